"""The text view: a customer's recent history as one compact line, built in SQL.

Why text at all: the encoder reads what the numbers flatten away (which categories, what a review
said, a support contact right after a late parcel). Why **most recent first**: the tokenizer
truncates at ``model.max_length``, so the tail that gets cut is the oldest history.

Why **relative days** (``[12d ago]``) instead of calendar dates: the model should learn "a bad
review 3 days ago", not memorise calendar dates it never sees again at scoring time; relative days
keep the text distribution stationary across cutoffs (good for drift monitoring too). Days are whole
UTC calendar days before the cutoff: an event yesterday at 23:59 UTC is ``1d ago``; nothing on or
after the cutoff day can appear (``0d ago`` never occurs).

One line per item, separated by `` | ``, newest first (ties: orders, then reviews, then events):

- order: ``[Nd ago] order AMOUNT STATUS: cat1, cat2`` (status completed/cancelled/returned; the
  alphabetically first and last distinct item categories, then ``+N more`` when there are more;
  the ``dataset.text_recent_orders`` newest orders)
- review: ``[Nd ago] review R/5 "text"`` (text capped at 200 characters, newlines flattened;
  the ``dataset.text_recent_reviews`` newest reviews)
- notable session (one line per session and UTC day): ``[Nd ago] support contact`` (``x2`` when
  repeated), ``[Nd ago] abandoned cart: cat`` (add-to-cart without checkout in that session and day), or both comma-joined;
  the ``dataset.text_recent_events`` newest ones

Only items inside the feature history span (see :mod:`pipelines.features.sql`) are rendered.
A real example (customer 1 of the unit-test data at cutoff 2025-03-01, identical on DuckDB and
PostgreSQL; wrapped here, one line in the frame)::

    [1d ago] abandoned cart: shoes | [3d ago] support contact | [4d ago] review 2/5 "parcel arrived
    late and damaged" | [6d ago] order 54.90 completed: books, electronics | [19d ago] order 20.00
    returned: shoes | [40d ago] order 15.00 cancelled: toys | [58d ago] order 35.50 completed: toys
    | [101d ago] order 40.00 completed: books, toys | [212d ago] review 5/5 "great read" | [259d
    ago] order 100.00 completed: books

Amounts are in the shop currency (the contract stores no currency code, so none is printed).

``dataset.text_style: compact`` writes the same items with fewer tokens (MiniLM's WordPiece: ~5 fewer per
order, 3 fewer per review or event): ``6d order 55 completed: books, electronics | 19d order 20
returned: shoes`` (the day marker without brackets and "ago", amounts rounded to whole units).
"""

from __future__ import annotations

from pipelines.features.sql_common import day_number

REVIEW_TEXT_CHARS = 200
CATEGORY_LIST_CHARS = 120
SEPARATOR = " | "
TEXT_STYLES = ("verbose", "compact")


def _amount_text(column: str, style: str = "verbose") -> str:
    """The amount to cents (compact: to whole units, half away from zero on both engines); NaN/inf (which DuckDB
    cannot cast to DECIMAL) as '?', so the scoring job's finite-feature check names the feature instead of the
    query dying on a cast error."""
    special = ", ".join(f"CAST('{v}' AS DOUBLE PRECISION)" for v in ("NaN", "Infinity", "-Infinity"))
    finite = f"CASE WHEN {column} IN ({special}) THEN NULL ELSE {column} END"
    if style == "compact":
        return f"COALESCE(CAST(CAST(ROUND(CAST({finite} AS DECIMAL(18, 2)), 0) AS DECIMAL(18, 0)) AS TEXT), '?')"
    return f"COALESCE(CAST(CAST({finite} AS DECIMAL(18, 2)) AS TEXT), '?')"


def _days_ago(age_column: str, style: str = "verbose") -> str:
    if style == "compact":
        return f"CAST({age_column} AS TEXT) || 'd '"
    return f"'[' || CAST({age_column} AS TEXT) || 'd ago] '"


def _category_list(column: str) -> str:
    """Up to two distinct categories alphabetically, then ``+N more``, from deduplicated rows.

    Why not string_agg(DISTINCT ... ORDER BY ...): that is the slowest aggregate on DuckDB and 98% of
    orders hold at most two categories.
    """
    return (
        f"CASE WHEN COUNT(*) = 1 THEN MIN({column}) ELSE MIN({column}) || ', ' || MAX({column}) "
        f"|| CASE WHEN COUNT(*) > 2 THEN ' +' || CAST(COUNT(*) - 2 AS TEXT) || ' more' ELSE '' END END"
    )


def _top(source: str, agg: str, alias: str, columns: str, n: int, *, population: bool) -> str:
    """The ``n`` newest rows of ``source`` per (customer, cutoff), without sorting per cutoff.

    ``seq`` numbers a customer's rows oldest first once; the rows inside a cutoff's span are the
    contiguous run ending at ``max_seq`` (``n_span`` long), so the newest ``n`` are a seq range.
    """
    pop = (
        "\n  JOIN population p ON p.customer_id = a.customer_id AND p.cutoff_date = a.cutoff_date" if population else ""
    )
    return f"""{alias} AS (
  SELECT a.customer_id, a.cutoff_date, a.cutoff_dn - s.dn AS age, {columns}
  FROM {agg} a{pop}
  JOIN {source} s ON s.customer_id = a.customer_id
   AND s.seq > a.max_seq - LEAST(a.n_span, {int(n)}) AND s.seq <= a.max_seq
)"""


def text_ctes(
    *, recent_orders: int, recent_reviews: int, recent_events: int, only_customer: str = "", style: str = "verbose"
) -> str:
    """CTEs ending in ``text_agg`` (one ``text_view`` per customer and cutoff).

    Expects ``population`` (orders aggregated per customer and cutoff, with ``max_seq``/``n_span``),
    ``ord`` / ``rev`` / ``ev_notable`` (source rows numbered by ``seq``) and their per-cutoff
    aggregates ``rev_agg`` / ``ev_notable_agg``. The lines are merged newest first with one
    ROW_NUMBER and a fixed-width pivot (faster than an ordered string_agg on DuckDB). ``style``:
    ``verbose`` or ``compact`` (see the module docstring).
    """
    if style not in TEXT_STYLES:
        raise ValueError(f"unknown text view style {style!r}; expected one of {TEXT_STYLES}")
    total = int(recent_orders) + int(recent_reviews) + int(recent_events)
    ctes = [
        _top(
            "ord",
            "population",
            "ord_top",
            "s.order_id, s.ordered_at, s.status, s.total_amount",
            recent_orders,
            population=False,
        ),
        f"""ord_top_cats AS (
  SELECT order_id, {_category_list("category")} AS cats
  FROM (
    SELECT DISTINCT i.order_id, i.category
    FROM {{order_items}} i
    WHERE i.category IS NOT NULL AND i.order_id IN (SELECT order_id FROM ord_top)
  ) d
  GROUP BY order_id
)""",
        _top(
            "rev",
            "rev_agg",
            "rev_top",
            "s.review_id, s.reviewed_at, s.rating, s.review_text",
            recent_reviews,
            population=True,
        ),
        _top(
            "ev_notable",
            "ev_notable_agg",
            "ev_top",
            "s.session_id, s.dn, s.last_at, s.last_event_id, s.n_support, s.abandoned",
            recent_events,
            population=True,
        ),
        f"""cart_cats AS (
  SELECT customer_id, session_id, dn, {_category_list("category")} AS cats
  FROM (
    SELECT DISTINCT e.customer_id, e.session_id, {day_number("e.event_at")} AS dn, pr.category
    FROM {{events}} e
    JOIN {{products}} pr ON pr.product_id = e.product_id
    JOIN (SELECT DISTINCT customer_id, session_id FROM ev_top WHERE abandoned) t
      ON t.customer_id = e.customer_id AND t.session_id = e.session_id
    WHERE e.event_type = 'add_to_cart' AND pr.category IS NOT NULL
      AND e.event_at >= CAST(:scan_start AS TIMESTAMPTZ) AND e.event_at < CAST(:scan_end AS TIMESTAMPTZ)
      {only_customer}
  ) d
  GROUP BY customer_id, session_id, dn
)""",
    ]
    parts = [
        f"""  SELECT o.customer_id, o.cutoff_date, o.ordered_at AS item_at, 1 AS prio, o.order_id AS item_id,
         {_days_ago("o.age", style)} || 'order ' || {_amount_text("o.total_amount", style)} || ' ' || o.status
         || COALESCE(': ' || oc.cats, '') AS line
  FROM ord_top o LEFT JOIN ord_top_cats oc ON oc.order_id = o.order_id""",
        f"""  SELECT r.customer_id, r.cutoff_date, r.reviewed_at AS item_at, 2 AS prio, r.review_id AS item_id,
         {_days_ago("r.age", style)} || 'review ' || CAST(r.rating AS TEXT) || '/5'
         || COALESCE(' "' || LEFT(REPLACE(REPLACE(TRIM(r.review_text), CHR(13), ' '), CHR(10), ' '), {REVIEW_TEXT_CHARS})
                     || '"', '') AS line
  FROM rev_top r""",
        f"""  SELECT e.customer_id, e.cutoff_date, e.last_at AS item_at, 3 AS prio, e.last_event_id AS item_id,
         {_days_ago("e.age", style)} || CONCAT_WS(', ',
           CASE WHEN e.n_support > 1 THEN 'support contact x' || CAST(e.n_support AS TEXT)
                WHEN e.n_support = 1 THEN 'support contact' END,
           CASE WHEN e.abandoned THEN 'abandoned cart' || COALESCE(': ' || cc.cats, '') END) AS line
  FROM ev_top e
  LEFT JOIN cart_cats cc ON cc.customer_id = e.customer_id AND cc.session_id = e.session_id AND cc.dn = e.dn""",
    ]
    ctes.append("text_items AS (\n" + "\n  UNION ALL\n".join(parts) + "\n)")
    if total == 0:
        ctes.append("text_agg AS (\n  SELECT customer_id, cutoff_date, '' AS text_view FROM text_items WHERE 1 = 0\n)")
        return ",\n".join(ctes)
    pivot = ",\n    ".join(f"MAX(CASE WHEN rn = {k} THEN line END)" for k in range(1, total + 1))
    ctes.append(
        f"""text_agg AS (
  SELECT customer_id, cutoff_date, CONCAT_WS('{SEPARATOR}',
    {pivot}) AS text_view
  FROM (
    SELECT customer_id, cutoff_date, line,
           ROW_NUMBER() OVER (PARTITION BY customer_id, cutoff_date ORDER BY item_at DESC, prio, item_id DESC) AS rn
    FROM text_items
  ) ranked
  GROUP BY customer_id, cutoff_date
)"""
    )
    return ",\n".join(ctes)
