"""The point-in-time feature query: one SQL statement, the same text on DuckDB and PostgreSQL.

Boundary conventions (the single place they are defined):

- A cutoff ``t`` is a date; its instant is ``t 00:00 UTC``. Features and the text view use only rows
  whose timestamp is **strictly before** that instant. Rows are bucketed into UTC calendar days and
  a row's ``age`` is ``t - day`` (1 = the day before the cutoff); a window of ``w`` days holds ages
  ``1..w``, i.e. the half-open interval ``[t - w days, t)``.
- Population at ``t``: customers with >= 1 completed order in ``[t - population_days, t)``
  (``churn.population``: ``active`` uses ``lookback_days``, ``ever`` uses ``ever_lookback_days``).
- Label ``churned`` at ``t``: 1 when the customer has no completed order in
  ``[t, t + horizon_days)`` (timestamps), i.e. on the ``horizon_days`` calendar days starting at the
  cutoff day; docs/ARCHITECTURE.md writes this ``(cutoff, cutoff + horizon]`` with "cutoff" meaning
  the last instant of feature time. The label window is fully observed once data up to
  ``t + horizon_days`` 00:00 UTC exists.
- Every source table is read only inside the history span ``[t - span_days, t)`` where
  ``span_days = max(windows_days, population_days, 365)``; ``days_since_last_event`` is capped at
  ``span_days`` (the documented sentinel for "no event in the span").

Buy-till-you-die statistics (BG/NBD sense, Fader, Hardie & Lee 2005) count UTC days with a completed order
inside the history span: ``btyd_frequency`` = purchase days - 1 (repeat purchases), ``btyd_recency_days`` =
last - first purchase day, ``btyd_age_days`` = cutoff day - first purchase day. The first purchase is the first
one in the span, so for customers older than ``span_days`` these are the span's view (age capped at the span).

Why this shape: each source table is scanned once, range-joined to the small cutoffs relation
(VALUES of bound parameters) on UTC day and aggregated per (customer, cutoff) with FILTER clauses;
no correlated subqueries, no raw events leave the warehouse.

Why one file over 400 lines: it is one SQL statement and its per-feature fragments; splitting it would
scatter one query across modules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from pipelines.config import Config
from pipelines.features.sql_common import EPOCH, day_number, seconds_between
from pipelines.features.text_view import text_ctes

TREND_DAYS = 90  # trends compare ages 1..90 with 91..180
LONG_DAYS = 365  # category diversity, cancellation/return rates, reviews, average order value
EVENT_WINDOWS = (30, 90)  # sessions and support contacts
BEHAVIOUR_DAYS = 90  # searches, add-to-cart, cart abandonment
NEUTRAL_SENTIMENT = 0.5  # a customer without a scored review text: neither tone


def span_days(config: Config) -> int:
    """How many days of history before a cutoff the query reads."""
    return max([*config.dataset.windows_days, config.churn.population_days, LONG_DAYS, 2 * TREND_DAYS])


def _windows(config: Config) -> list[int]:
    return sorted(set(config.dataset.windows_days))


def _ratio(num: str, den: str) -> str:
    """num / den as DOUBLE PRECISION, 0 when the denominator is 0 or missing."""
    return f"COALESCE(CAST({num} AS DOUBLE PRECISION) / NULLIF(CAST({den} AS DOUBLE PRECISION), 0), 0)"


def _num(expr: str) -> str:
    return f"CAST(COALESCE({expr}, 0) AS DOUBLE PRECISION)"


@dataclass(frozen=True)
class Feature:
    name: str
    sql: str  # expression over the final join (aliases p, e, r, k, cu)
    doc: str


def feature_definitions(config: Config) -> list[Feature]:
    """Every numeric feature with its SQL and meaning; the order is the frame's column order."""
    span = span_days(config)
    feats = [
        Feature(
            "days_since_last_order",
            f"CAST({seconds_between('p.cutoff_ts', 'p.last_completed_at')} / 86400.0 AS DOUBLE PRECISION)",
            "days from the last completed order to the cutoff (fractional)",
        ),
        Feature(
            "days_since_last_event",
            f"CAST(COALESCE({seconds_between('p.cutoff_ts', 'e.last_event_at')} / 86400.0, {span})"
            " AS DOUBLE PRECISION)",
            f"days from the last site event to the cutoff; {span} (the history span) when none in it",
        ),
        Feature(
            "tenure_days",
            f"CAST(COALESCE(GREATEST({seconds_between('p.cutoff_ts', 'cu.signup_at')} / 86400.0, 0), 0)"
            " AS DOUBLE PRECISION)",
            "days since signup (0 when the customer row is missing)",
        ),
    ]
    for w in _windows(config):
        feats.append(Feature(f"orders_{w}d", _num(f"p.orders_{w}d"), f"completed orders in the last {w} days"))
    for w in _windows(config):
        feats.append(Feature(f"revenue_{w}d", _num(f"p.revenue_{w}d"), f"completed revenue in the last {w} days"))
    feats += [
        Feature(
            "orders_trend_90d",
            _ratio("p.orders_last90 - p.orders_prev90", "p.orders_last90 + p.orders_prev90"),
            "(orders last 90d - previous 90d) / their sum, in [-1, 1], 0 when both are 0",
        ),
        Feature(
            "revenue_trend_90d",
            _ratio(
                "COALESCE(p.revenue_last90, 0) - COALESCE(p.revenue_prev90, 0)",
                "COALESCE(p.revenue_last90, 0) + COALESCE(p.revenue_prev90, 0)",
            ),
            "(revenue last 90d - previous 90d) / their sum, in [-1, 1], 0 when both are 0",
        ),
        Feature(
            "avg_order_value_365d",
            _ratio("p.revenue_long", "p.orders_long"),
            "completed revenue / completed orders over 365 days",
        ),
        Feature(
            "categories_365d", _num("k.categories_365d"), "distinct item categories of completed orders in 365 days"
        ),
        Feature(
            "cancellation_rate_365d",
            _ratio("p.cancelled_long", "p.all_orders_long"),
            "cancelled / all orders in 365 days (0 without orders)",
        ),
        Feature(
            "return_rate_365d",
            _ratio("p.returned_long", "p.all_orders_long"),
            "returned / all orders in 365 days (0 without orders)",
        ),
    ]
    for w in EVENT_WINDOWS:
        feats.append(
            Feature(f"sessions_{w}d", _num(f"e.sessions_{w}d"), f"sessions (session id x UTC day) in the last {w} days")
        )
    feats += [
        Feature("searches_90d", _num("e.searches_90d"), "search events in 90 days"),
        Feature("add_to_cart_90d", _num("e.add_to_cart_90d"), "add-to-cart events in 90 days"),
        Feature(
            "cart_abandonment_rate_90d",
            _ratio("e.abandoned_90d", "e.cart_sessions_90d"),
            "sessions with add-to-cart but no checkout / sessions with add-to-cart, 90 days (0 without carts)",
        ),
    ]
    for w in EVENT_WINDOWS:
        feats.append(Feature(f"support_contacts_{w}d", _num(f"e.support_{w}d"), f"support contacts in {w} days"))
    feats += [
        Feature(
            "btyd_frequency",
            _num("g.n_days - 1"),
            "repeat purchase days in the history span (UTC days with a completed order, minus the first)",
        ),
        Feature(
            "btyd_recency_days",
            _num("g.last_dn - g.first_dn"),
            "days from the first to the last purchase day in the history span (BG/NBD t_x)",
        ),
        Feature(
            "btyd_age_days",
            _num("p.cutoff_dn - g.first_dn"),
            "days from the first purchase day in the history span to the cutoff (BG/NBD T, capped at the span)",
        ),
        Feature(
            "median_gap_days",
            _num("g.median_gap"),
            "median days between consecutive purchase days in the history span (0 with fewer than 2)",
        ),
        Feature(
            "overdue_ratio",
            f"CAST(COALESCE({seconds_between('p.cutoff_ts', 'p.last_completed_at')} / 86400.0 / NULLIF(g.median_gap, 0),"
            " -1) AS DOUBLE PRECISION)",
            "days since the last order / the customer's median gap (1 = on schedule); -1 with fewer than 2 purchase days",
        ),
    ]
    feats += [
        Feature("reviews_365d", _num("r.reviews_365d"), "reviews written in 365 days"),
        Feature("mean_rating_365d", _num("r.mean_rating_365d"), "mean star rating in 365 days (0 without reviews)"),
        Feature(
            "low_rating_share_365d",
            _ratio("r.low_ratings_365d", "r.reviews_365d"),
            "share of reviews rated <= 2 in 365 days (0 without reviews)",
        ),
        # review sentiment (table review_sentiment: P(the text is positive) from the model's sentiment head)
        Feature(
            "sentiment_mean_365d",
            f"CAST(COALESCE(r.sentiment_mean_365d, {NEUTRAL_SENTIMENT}) AS DOUBLE PRECISION)",
            f"mean text sentiment (0 negative .. 1 positive) of the reviews in 365 days ({NEUTRAL_SENTIMENT} without one)",
        ),
        Feature(
            "sentiment_last",
            f"CAST(COALESCE(rl.sentiment, {NEUTRAL_SENTIMENT}) AS DOUBLE PRECISION)",
            f"text sentiment of the most recent review in the history span ({NEUTRAL_SENTIMENT} without one)",
        ),
        Feature(
            "sentiment_disagree_share_365d",
            _ratio("r.disagreeing_365d", "r.judged_365d"),
            "share of the 1-2 and 4-5 star reviews in 365 days whose text says the opposite of the stars (0 without)",
        ),
    ]
    return feats


def purchase_day_ctes(span: int) -> list[str]:
    """``buy_agg``: per (customer, cutoff) purchase days, first/last day and median gap in the history span.

    Reads the ``ord`` CTE (orders of the scan range); a gap counts only when both of its days lie in the
    cutoff's span, so every cutoff sees the same definition whatever the scan range.
    """
    return [
        """buy_days AS (
  SELECT customer_id, dn, dn - LAG(dn) OVER (PARTITION BY customer_id ORDER BY dn) AS gap
  FROM (SELECT DISTINCT customer_id, dn FROM ord WHERE status = 'completed') d
)""",
        f"""buy_agg AS (
  SELECT customer_id, cutoff_date, COUNT(*) AS n_days, MIN(dn) AS first_dn, MAX(dn) AS last_dn,
    PERCENTILE_CONT(0.5) WITHIN GROUP (
      ORDER BY CASE WHEN gap IS NOT NULL AND dn - gap >= cutoff_dn - {int(span)} THEN gap END
    ) AS median_gap
  FROM ({_cross_cutoffs("buy_days", "b", "b.customer_id, b.dn, b.gap", span)}) x
  GROUP BY customer_id, cutoff_date
)""",
    ]


def btyd_summary_sql(config: Config) -> str:
    """``(btyd_frequency, btyd_recency_days, btyd_age_days)`` of the whole population at one bound cutoff.

    The BG/NBD fit needs every population customer at once, while scoring streams its features in
    customer-id slices; this small query gives the fit its input with the same CTEs as :func:`feature_sql`.
    """
    span = span_days(config)
    population = int(config.churn.population_days)
    return (
        "WITH "
        + ",\n".join(
            [
                _cutoffs_cte(1),
                f"""ord AS (
  SELECT customer_id, status, {day_number("ordered_at")} AS dn
  FROM {{orders}}
  WHERE ordered_at >= CAST(:scan_start AS TIMESTAMPTZ) AND ordered_at < CAST(:scan_end AS TIMESTAMPTZ)
)""",
                *purchase_day_ctes(span),
            ]
        )
        + f"""
SELECT g.customer_id, CAST(g.n_days - 1 AS DOUBLE PRECISION) AS btyd_frequency,
  CAST(g.last_dn - g.first_dn AS DOUBLE PRECISION) AS btyd_recency_days,
  CAST(c.cutoff_dn - g.first_dn AS DOUBLE PRECISION) AS btyd_age_days
FROM buy_agg g JOIN cutoffs c ON c.cutoff_date = g.cutoff_date
WHERE g.last_dn >= c.cutoff_dn - {population}
ORDER BY g.customer_id"""
    )


def _cutoffs_cte(n: int) -> str:
    rows = ",\n    ".join(
        f"(CAST(:cutoff_date_{i} AS DATE), CAST(:cutoff_ts_{i} AS TIMESTAMPTZ), CAST(:cutoff_dn_{i} AS INTEGER), "
        f"CAST(:label_end_{i} AS TIMESTAMPTZ))"
        for i in range(n)
    )
    return f"cutoffs (cutoff_date, cutoff_ts, cutoff_dn, label_end) AS (\n  VALUES\n    {rows}\n)"


def _ts(day: dt.date) -> str:
    return f"{day.isoformat()} 00:00:00+00"


def feature_params(
    config: Config, cutoffs: Sequence[dt.date], *, labels: bool, customer_range: tuple[int, int] | None = None
) -> dict:
    """Bound parameters for :func:`feature_sql` (instants as ISO text with an explicit UTC offset)."""
    span = span_days(config)
    horizon = config.churn.horizon_days
    params: dict = {}
    for i, cutoff in enumerate(cutoffs):
        params[f"cutoff_date_{i}"] = cutoff.isoformat()
        params[f"cutoff_ts_{i}"] = _ts(cutoff)
        params[f"cutoff_dn_{i}"] = (cutoff - EPOCH).days
        params[f"label_end_{i}"] = _ts(cutoff + dt.timedelta(days=horizon))
    params["scan_start"] = _ts(min(cutoffs) - dt.timedelta(days=span))
    params["scan_end"] = _ts(max(cutoffs))
    if labels:
        params["label_scan_start"] = _ts(min(cutoffs))
        params["label_scan_end"] = _ts(max(cutoffs) + dt.timedelta(days=horizon))
    if customer_range is not None:
        params["customer_lo"], params["customer_hi"] = (int(v) for v in customer_range)
    return params


def _cross_cutoffs(source: str, alias: str, columns: str, span: int) -> str:
    """Each source row once per cutoff whose history span holds it, with its ``age`` in days."""
    return f"""SELECT {columns}, c.cutoff_date, c.cutoff_dn, c.cutoff_ts, c.cutoff_dn - {alias}.dn AS age
  FROM {source} {alias} JOIN cutoffs c ON {alias}.dn < c.cutoff_dn AND {alias}.dn >= c.cutoff_dn - {int(span)}"""


def feature_sql(
    config: Config,
    n_cutoffs: int,
    *,
    labels: bool,
    customer_range: bool = False,
    order_by: str = "p.cutoff_date, p.customer_id",
) -> str:
    """The whole query (``{table}`` placeholders unrendered) for ``n_cutoffs`` bound cutoffs.

    ``customer_range`` restricts every source scan to ``customer_id BETWEEN :customer_lo AND
    :customer_hi``: one customer for inspection, or one slice of the population so that streaming
    the scoring features keeps the warehouse's working memory bounded.
    """
    if n_cutoffs < 1:
        raise ValueError("at least one cutoff is needed")
    ds = config.dataset
    span = span_days(config)
    lookback = int(config.churn.population_days)

    def only(alias: str = "") -> str:
        return f"AND {alias}customer_id BETWEEN :customer_lo AND :customer_hi" if customer_range else ""

    completed = "status = 'completed'"
    order_aggs = [
        "MIN(cutoff_dn) AS cutoff_dn",
        "MIN(cutoff_ts) AS cutoff_ts",
        "MAX(seq) AS max_seq",
        "COUNT(*) AS n_span",
        f"MAX(ordered_at) FILTER (WHERE {completed}) AS last_completed_at",
        f"COUNT(*) FILTER (WHERE {completed} AND age <= {lookback}) AS completed_lookback",
    ]
    for w in _windows(config):
        order_aggs.append(f"COUNT(*) FILTER (WHERE {completed} AND age <= {w}) AS orders_{w}d")
        order_aggs.append(f"SUM(total_amount) FILTER (WHERE {completed} AND age <= {w}) AS revenue_{w}d")
    t = TREND_DAYS
    order_aggs += [
        f"COUNT(*) FILTER (WHERE {completed} AND age <= {t}) AS orders_last90",
        f"COUNT(*) FILTER (WHERE {completed} AND age > {t} AND age <= {2 * t}) AS orders_prev90",
        f"SUM(total_amount) FILTER (WHERE {completed} AND age <= {t}) AS revenue_last90",
        f"SUM(total_amount) FILTER (WHERE {completed} AND age > {t} AND age <= {2 * t}) AS revenue_prev90",
        f"COUNT(*) FILTER (WHERE {completed} AND age <= {LONG_DAYS}) AS orders_long",
        f"SUM(total_amount) FILTER (WHERE {completed} AND age <= {LONG_DAYS}) AS revenue_long",
        f"COUNT(*) FILTER (WHERE age <= {LONG_DAYS}) AS all_orders_long",
        f"COUNT(*) FILTER (WHERE status = 'cancelled' AND age <= {LONG_DAYS}) AS cancelled_long",
        f"COUNT(*) FILTER (WHERE status = 'returned' AND age <= {LONG_DAYS}) AS returned_long",
    ]
    event_aggs = ["MAX(last_at) AS last_event_at"]
    for w in EVENT_WINDOWS:
        event_aggs.append(f"COUNT(*) FILTER (WHERE age <= {w}) AS sessions_{w}d")
        event_aggs.append(f"SUM(n_support) FILTER (WHERE age <= {w}) AS support_{w}d")
    b = BEHAVIOUR_DAYS
    event_aggs += [
        f"SUM(n_search) FILTER (WHERE age <= {b}) AS searches_90d",
        f"SUM(n_atc) FILTER (WHERE age <= {b}) AS add_to_cart_90d",
        f"COUNT(*) FILTER (WHERE age <= {b} AND n_atc > 0) AS cart_sessions_90d",
        f"COUNT(*) FILTER (WHERE age <= {b} AND abandoned) AS abandoned_90d",
    ]
    sep = ",\n    "
    ctes = [
        _cutoffs_cte(n_cutoffs),
        # orders in any cutoff's span, numbered per customer oldest first (seq feeds the text view)
        f"""ord AS (
  SELECT customer_id, order_id, ordered_at, status, total_amount, {day_number("ordered_at")} AS dn,
         ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY ordered_at, order_id) AS seq
  FROM {{orders}}
  WHERE ordered_at >= CAST(:scan_start AS TIMESTAMPTZ) AND ordered_at < CAST(:scan_end AS TIMESTAMPTZ) {only()}
)""",
        f"""ord_c AS (
  {_cross_cutoffs("ord", "o", "o.customer_id, o.ordered_at, o.status, o.total_amount, o.seq", span)}
)""",
        f"""ord_agg AS (
  SELECT customer_id, cutoff_date,
    {sep.join(order_aggs)}
  FROM ord_c
  GROUP BY customer_id, cutoff_date
)""",
        *purchase_day_ctes(span),
        """population AS (
  SELECT * FROM ord_agg WHERE completed_lookback > 0
)""",
        f"""cat_days AS (
  SELECT DISTINCT o.customer_id, i.category, o.dn
  FROM ord o JOIN {{order_items}} i ON i.order_id = o.order_id
  WHERE o.{completed} AND i.category IS NOT NULL
)""",
        f"""cat_agg AS (
  SELECT customer_id, cutoff_date, COUNT(DISTINCT category) AS categories_365d
  FROM ({_cross_cutoffs("cat_days", "d", "d.customer_id, d.category", LONG_DAYS)}) x
  GROUP BY customer_id, cutoff_date
)""",
        # events: one row per session and UTC day (a day never straddles a cutoff)
        f"""ev_sd AS (
  SELECT customer_id, session_id, {day_number("event_at")} AS dn,
         MAX(event_at) AS last_at, MAX(event_id) AS last_event_id,
         COUNT(*) FILTER (WHERE event_type = 'search') AS n_search,
         COUNT(*) FILTER (WHERE event_type = 'add_to_cart') AS n_atc,
         COUNT(*) FILTER (WHERE event_type = 'support_contact') AS n_support,
         COUNT(*) FILTER (WHERE event_type = 'add_to_cart') > 0
           AND COUNT(*) FILTER (WHERE event_type = 'checkout') = 0 AS abandoned
  FROM {{events}}
  WHERE event_at >= CAST(:scan_start AS TIMESTAMPTZ) AND event_at < CAST(:scan_end AS TIMESTAMPTZ) {only()}
  GROUP BY customer_id, session_id, {day_number("event_at")}
)""",
        f"""ev_agg AS (
  SELECT customer_id, cutoff_date,
    {sep.join(event_aggs)}
  FROM ({
            _cross_cutoffs(
                "ev_sd", "s", "s.customer_id, s.last_at, s.n_search, s.n_atc, s.n_support, s.abandoned", span
            )
        }) x
  GROUP BY customer_id, cutoff_date
)""",
        """ev_notable AS (
  SELECT customer_id, session_id, dn, last_at, last_event_id, n_support, abandoned,
         ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY last_at, last_event_id) AS seq
  FROM ev_sd
  WHERE n_support > 0 OR abandoned
)""",
        f"""ev_notable_agg AS (
  SELECT customer_id, cutoff_date, MIN(cutoff_dn) AS cutoff_dn, MAX(seq) AS max_seq, COUNT(*) AS n_span
  FROM ({_cross_cutoffs("ev_notable", "n", "n.customer_id, n.seq", span)}) x
  GROUP BY customer_id, cutoff_date
)""",
        # reviews with their text sentiment: the review's own timestamp decides which cutoffs see it
        f"""rev AS (
  SELECT v.customer_id, v.review_id, v.rating, v.review_text, v.reviewed_at, {day_number("v.reviewed_at")} AS dn,
         s.sentiment, s.disagrees,
         ROW_NUMBER() OVER (PARTITION BY v.customer_id ORDER BY v.reviewed_at, v.review_id) AS seq
  FROM {{reviews}} v LEFT JOIN {{review_sentiment}} s ON s.review_id = v.review_id
  WHERE v.reviewed_at >= CAST(:scan_start AS TIMESTAMPTZ) AND v.reviewed_at < CAST(:scan_end AS TIMESTAMPTZ)
    {only("v.")}
)""",
        f"""rev_agg AS (
  SELECT customer_id, cutoff_date, MIN(cutoff_dn) AS cutoff_dn,
    COUNT(*) FILTER (WHERE age <= {LONG_DAYS}) AS reviews_365d,
    AVG(rating) FILTER (WHERE age <= {LONG_DAYS}) AS mean_rating_365d,
    COUNT(*) FILTER (WHERE age <= {LONG_DAYS} AND rating <= 2) AS low_ratings_365d,
    AVG(sentiment) FILTER (WHERE age <= {LONG_DAYS}) AS sentiment_mean_365d,
    COUNT(*) FILTER (WHERE age <= {LONG_DAYS} AND disagrees) AS disagreeing_365d,
    COUNT(*) FILTER (WHERE age <= {LONG_DAYS} AND disagrees IS NOT NULL) AS judged_365d,
    MAX(seq) FILTER (WHERE sentiment IS NOT NULL) AS last_sentiment_seq,
    MAX(seq) AS max_seq,
    COUNT(*) AS n_span
  FROM ({_cross_cutoffs("rev", "r", "r.customer_id, r.rating, r.seq, r.sentiment, r.disagrees", span)}) x
  GROUP BY customer_id, cutoff_date
)""",
        text_ctes(
            recent_orders=ds.text_recent_orders,
            recent_reviews=ds.text_recent_reviews,
            recent_events=ds.text_recent_events,
            only_customer=only("e."),
            style=ds.text_style,
        ),
    ]
    if labels:
        ctes.append(f"""future AS (
  SELECT o.customer_id, c.cutoff_date, COUNT(*) AS n_future
  FROM {{orders}} o JOIN cutoffs c ON o.ordered_at >= c.cutoff_ts AND o.ordered_at < c.label_end
  WHERE o.{completed} AND o.ordered_at >= CAST(:label_scan_start AS TIMESTAMPTZ)
    AND o.ordered_at < CAST(:label_scan_end AS TIMESTAMPTZ) {only("o.")}
  GROUP BY o.customer_id, c.cutoff_date
)""")

    tenure = f"{seconds_between('p.cutoff_ts', 'cu.signup_at')} / 86400.0"
    select = ["p.customer_id", "p.cutoff_date"]
    select += [f"{f.sql} AS {f.name}" for f in feature_definitions(config)]
    select += [
        "COALESCE(x.text_view, '') AS text_view",
        f"""CASE WHEN cu.signup_at IS NULL THEN 'unknown'
         WHEN {tenure} < 90 THEN '<3m'
         WHEN {tenure} < 365 THEN '3-12m'
         WHEN {tenure} < 730 THEN '1-2y'
         ELSE '2y+' END AS tenure_band""",
        "COALESCE(cu.acquisition_channel, 'unknown') AS acquisition_channel",
    ]
    joins = [
        "LEFT JOIN {customers} cu ON cu.customer_id = p.customer_id",
        "LEFT JOIN ev_agg e ON e.customer_id = p.customer_id AND e.cutoff_date = p.cutoff_date",
        "LEFT JOIN rev_agg r ON r.customer_id = p.customer_id AND r.cutoff_date = p.cutoff_date",
        "LEFT JOIN rev rl ON rl.customer_id = r.customer_id AND rl.seq = r.last_sentiment_seq",
        "LEFT JOIN cat_agg k ON k.customer_id = p.customer_id AND k.cutoff_date = p.cutoff_date",
        "LEFT JOIN buy_agg g ON g.customer_id = p.customer_id AND g.cutoff_date = p.cutoff_date",
        "LEFT JOIN text_agg x ON x.customer_id = p.customer_id AND x.cutoff_date = p.cutoff_date",
    ]
    if labels:
        select.append("CASE WHEN f.n_future IS NULL THEN 1 ELSE 0 END AS churned")
        joins.append("LEFT JOIN future f ON f.customer_id = p.customer_id AND f.cutoff_date = p.cutoff_date")
    return (
        "WITH "
        + ",\n".join(ctes)
        + "\nSELECT\n  "
        + ",\n  ".join(select)
        + "\nFROM population p\n"
        + "\n".join(joins)
        + f"\nORDER BY {order_by}"
    )
