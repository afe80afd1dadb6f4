"""What an analyst needs next to a score: value at risk, change, rank, and the reasons in words.

:class:`ScoreDetails` rides along the scoring stream (one ``add`` per predicted slice, so it sees the
features while they are in memory and keeps only small arrays) and, once every customer is scored, adds
to ``churn_scores``:

- ``expected_revenue``: the daily completed revenue of the longest revenue window times ``horizon_days``
  (what the customer brings in the horizon if they stay); ``value_at_risk`` = probability x that;
- ``percentile_rank`` of the probability among the day's customers, ``tier_rank`` (0 = lowest tier);
- ``probability_change`` against the customer's score on the previous score date in ``churn_scores``.

and builds ``churn_score_reasons``: the top ``explain.reasons_per_customer`` reasons that raise each
customer's risk (customers of ``explain.reason_tiers``). Correlated features are grouped into one phrase
("no order in 74 days; usually every 21"); a group's contribution is the sum of its features'. For a
transformer, text items (a review, an order, an abandoned cart) whose removal lowers the risk compete
with the numeric groups (customers of ``explain.text_reason_tiers``: one extra forward pass per item).
Contributions are on the probability scale (see :mod:`pipelines.models.explain`).

Why one file over 400 lines: the value columns, the reason phrases and their grouping templates are one
table of wording an analyst reads together.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.contract import CHURN_SCORE_REASONS, CHURN_SCORES, ID_COLUMN, TEXT_COLUMN, Table

if TYPE_CHECKING:
    import pyarrow as pa

    from pipelines.config import Config
    from pipelines.warehouse import Warehouse

logger = logging.getLogger(__name__)

TEXT_KINDS = ("transformer", "hybrid")  # models that read the text view: their reasons include text items
_WINDOW_RE = re.compile(r"^(orders|revenue|sessions|support_contacts)_(\d+)d$")


# -- phrases -------------------------------------------------------------------------------------------------
def _windows(values: dict[str, float], prefix: str) -> list[tuple[int, float]]:
    out = []
    for name, value in values.items():
        m = _WINDOW_RE.match(name)
        if m and m.group(1) == prefix:
            out.append((int(m.group(2)), value))
    return sorted(out)


def _n(value: float) -> str:
    return f"{value:.0f}"


def _recency(v: dict[str, float]) -> str:
    days = v["days_since_last_order"]
    text = f"no order in {_n(days)} days"
    windows = [(w, n) for w, n in _windows(v, "orders") if n >= 2]
    if windows:
        w, n = windows[-1]
        text += f"; usually every {_n(w / n)}"
    return text


def _rhythm(v: dict[str, float]) -> str:
    """Buy-till-you-die view: how overdue against the customer's own rhythm, and the BG/NBD P(active)."""
    ratio, gap = v.get("overdue_ratio", -1.0), v.get("median_gap_days", 0.0)
    text = f"{ratio:.1f}x overdue: usually buys every {_n(gap)} days" if ratio > 0 else "one purchase day so far"
    if "bgnbd_p_alive" in v:
        text += f"; {100 * v['bgnbd_p_alive']:.0f}% chance still active (BG/NBD)"
    return text


def _frequency(v: dict[str, float]) -> str:
    last = v.get("orders_90d")
    trend = v.get("orders_trend_90d")
    if last is not None and trend is not None and trend < 0:
        if last > 0 and trend > -1:
            before = last * (1 - trend) / (1 + trend)
            return f"{_n(last)} order{'s' if last != 1 else ''} in the last 90 days vs {_n(before)} the 90 before"
        return "no order in the last 90 days after orders the 90 before"
    windows = _windows(v, "orders")
    if windows:
        w, n = windows[-1]
        return f"only {_n(n)} order{'s' if n != 1 else ''} in {w} days"
    return "few orders"


def _spend(v: dict[str, float]) -> str:
    trend = v.get("revenue_trend_90d")
    if trend is not None and -1 < trend < 0:
        return f"spend down {100 * (1 - (1 + trend) / (1 - trend)):.0f}% on the 90 days before"
    if trend is not None and trend <= -1:
        return "no spend in the last 90 days"
    if "avg_order_value_365d" in v:
        return f"average order {v['avg_order_value_365d']:.2f}"
    return "low spend"


def _engagement(v: dict[str, float]) -> str:
    parts = []
    sessions = _windows(v, "sessions")
    if sessions:
        w, n = sessions[-1]
        parts.append(f"{_n(n)} site visit{'s' if n != 1 else ''} in {w} days")
    if "days_since_last_event" in v:
        parts.append(f"last visit {_n(v['days_since_last_event'])} days ago")
    return "; ".join(parts) or "little activity on the site"


def _support(v: dict[str, float]) -> str:
    windows = _windows(v, "support_contacts")
    if not windows:
        return "support contacts"
    w, n = next(((w, n) for w, n in windows if n > 0), windows[-1])
    return f"{_n(n)} support contact{'s' if n != 1 else ''} in {w} days"


def _ratings(v: dict[str, float]) -> str:
    n = v.get("reviews_365d", 0.0)
    if n > 0 and "mean_rating_365d" in v:
        return f"mean rating {v['mean_rating_365d']:.1f}/5 over {_n(n)} review{'s' if n != 1 else ''} in a year"
    return "no review in a year"


def _share(template: str, feature: str) -> Callable[[dict[str, float]], str]:
    return lambda v: template.format(share=f"{100 * v.get(feature, 0.0):.0f}%")


@dataclass(frozen=True)
class ReasonGroup:
    code: str
    match: Callable[[str], bool]
    phrase: Callable[[dict[str, float]], str]


GROUPS: tuple[ReasonGroup, ...] = (
    ReasonGroup("recency", lambda f: f == "days_since_last_order", _recency),
    ReasonGroup("frequency_drop", lambda f: f.startswith("orders_"), _frequency),
    ReasonGroup(
        "purchase_rhythm",
        lambda f: f.startswith(("btyd_", "bgnbd_")) or f in ("overdue_ratio", "median_gap_days"),
        _rhythm,
    ),
    ReasonGroup("spend_drop", lambda f: f.startswith("revenue_") or f == "avg_order_value_365d", _spend),
    ReasonGroup(
        "engagement_drop",
        lambda f: f.startswith("sessions_") or f in ("days_since_last_event", "searches_90d", "add_to_cart_90d"),
        _engagement,
    ),
    ReasonGroup("support", lambda f: f.startswith("support_contacts_"), _support),
    ReasonGroup("low_ratings", lambda f: f.startswith(("reviews_", "mean_rating_", "low_rating_share_")), _ratings),
    ReasonGroup(
        "review_sentiment",
        lambda f: f.startswith("sentiment_"),
        lambda v: "negative tone in recent reviews",
    ),
    ReasonGroup(
        "cart_abandonment",
        lambda f: f.startswith("cart_abandonment_rate_"),
        _share("abandoned {share} of carts in 90 days", "cart_abandonment_rate_90d"),
    ),
    ReasonGroup(
        "returns",
        lambda f: f.startswith("return_rate_"),
        _share("returned {share} of orders in a year", "return_rate_365d"),
    ),
    ReasonGroup(
        "cancellations",
        lambda f: f.startswith("cancellation_rate_"),
        _share("cancelled {share} of orders in a year", "cancellation_rate_365d"),
    ),
    ReasonGroup("tenure", lambda f: f == "tenure_days", lambda v: f"customer for {_n(v['tenure_days'])} days"),
    ReasonGroup(
        "variety",
        lambda f: f == "categories_365d",
        lambda v: (
            f"bought from {_n(v['categories_365d'])} categor{'y' if v['categories_365d'] == 1 else 'ies'} in a year"
        ),
    ),
)


def group_features(feature_names: list[str]) -> list[tuple[str, list[int], Callable[[dict[str, float]], str]]]:
    """(reason_code, feature indexes, phrase) for every group present; a feature in no group is its own group."""
    taken: set[int] = set()
    out = []
    for group in GROUPS:
        idx = [i for i, f in enumerate(feature_names) if i not in taken and group.match(f)]
        if idx:
            taken.update(idx)
            out.append((group.code, idx, group.phrase))
    for i, f in enumerate(feature_names):
        if i not in taken:
            out.append((f, [i], lambda v, f=f: f"{f.replace('_', ' ')} {v[f]:.3g}"))
    return out


_AGE_RE = re.compile(r"^\[(\d+)d ago\] (.*)$")


def text_item_reason(item: str) -> tuple[str, str, str]:
    """(reason_code, feature, text) of one text-view item: ``review 2/5 "late" 4 days ago``."""
    m = _AGE_RE.match(item)
    age, body = (int(m.group(1)), m.group(2)) if m else (None, item)
    if body.startswith("review"):
        code = "review_text"
    elif body.startswith("order"):
        code = "order_text"
    elif "abandoned cart" in body:
        code = "cart_text"
    elif "support contact" in body:
        code = "support_text"
    else:
        code = "history_text"
    when = "" if age is None else f" {age} day{'s' if age != 1 else ''} ago"
    return code, TEXT_COLUMN, f"{body}{when}"


# -- reasons -------------------------------------------------------------------------------------------------
def explain_rows(
    predictor,
    frame: pd.DataFrame,
    probabilities: np.ndarray,
    *,
    top_k: int = 3,
    with_text: np.ndarray | None = None,
    max_text_items: int = 8,
    pooled: np.ndarray | None = None,
) -> pd.DataFrame:
    """Top ``top_k`` risk-raising reasons per row of ``frame`` (columns of churn_score_reasons, no score_date).

    ``with_text``: boolean mask of rows that also get text-item occlusion (transformer only).
    """
    from pipelines.models.explain import logit_to_probability_scale, numeric_contributions, text_item_effects

    columns = ["customer_id", "rank", "reason_code", "feature", "value", "contribution", "text"]
    if len(frame) == 0:
        return pd.DataFrame(columns=columns)
    frame = frame.reset_index(drop=True)
    probs = np.asarray(probabilities, dtype=np.float64)
    attribution = numeric_contributions(predictor, frame, pooled)
    contrib = logit_to_probability_scale(attribution.contributions, probs)
    names = attribution.feature_names
    groups = group_features(names)
    group_contrib = np.stack([contrib[:, idx].sum(axis=1) for _, idx, _ in groups], axis=1)
    values = frame[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)

    # candidates per row: (contribution, kind, payload); text items join for the masked rows
    text_by_row: dict[int, list[Any]] = {}
    if with_text is not None and with_text.any() and getattr(predictor, "kind", None) in TEXT_KINDS:
        rows = np.flatnonzero(with_text)
        for effect in text_item_effects(predictor, frame.iloc[rows], probs[rows], max_text_items):
            if effect.effect > 0:
                text_by_row.setdefault(int(rows[effect.row]), []).append(effect)

    ids = frame[ID_COLUMN].to_numpy(dtype=np.int64)
    out: dict[str, list] = {c: [] for c in columns}
    order = np.argsort(-group_contrib, axis=1)[:, :top_k]
    for r in range(len(frame)):
        cands: list[tuple[float, str, Any]] = [
            (float(group_contrib[r, g]), "group", int(g)) for g in order[r] if group_contrib[r, g] > 0
        ]
        cands += [(e.effect, "text", e) for e in text_by_row.get(r, [])]
        cands.sort(key=lambda c: -c[0])
        row_values = None
        for rank, (value, kind, payload) in enumerate(cands[:top_k], start=1):
            if kind == "group":
                code, idx, phrase = groups[payload]
                main = idx[int(np.argmax(contrib[r, idx]))]
                if row_values is None:
                    row_values = dict(zip(names, values[r].tolist(), strict=True))
                try:
                    text = phrase(row_values)
                except (KeyError, ZeroDivisionError):
                    text = f"{names[main].replace('_', ' ')} {values[r, main]:.3g}"
                feature, feature_value = names[main], values[r, main]
            else:
                code, feature, text = text_item_reason(payload.text)
                feature_value = np.nan
            out["customer_id"].append(int(ids[r]))
            out["rank"].append(rank)
            out["reason_code"].append(code)
            out["feature"].append(feature)
            out["value"].append(None if not np.isfinite(feature_value) else float(feature_value))
            out["contribution"].append(float(value))
            out["text"].append(text)
    return pd.DataFrame(out, columns=columns)


def supports_attribution(predictor) -> bool:
    """LightGBM and hybrid bundles (a booster) and transformer bundles (an encoder + head) can be explained."""
    return getattr(predictor, "booster", None) is not None or (
        getattr(predictor, "kind", None) == "transformer" and hasattr(predictor, "model")
    )


# -- value ---------------------------------------------------------------------------------------------------
def expected_revenue(frame: pd.DataFrame, horizon_days: int) -> np.ndarray:
    """Daily completed revenue of the longest ``revenue_<w>d`` window x ``horizon_days`` (NaN without one)."""
    windows = [(int(m.group(2)), c) for c in frame.columns if (m := _WINDOW_RE.match(c)) and m.group(1) == "revenue"]
    if not windows:
        return np.full(len(frame), np.nan)
    w, column = max(windows)
    revenue = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.clip(revenue, 0, None) / w * horizon_days


def percentile_rank(probabilities: np.ndarray) -> np.ndarray:
    """Share of the other customers with a strictly lower probability (0 lowest, 1 highest)."""
    p = np.asarray(probabilities, dtype=np.float64)
    if len(p) <= 1:
        return np.zeros(len(p))
    return np.searchsorted(np.sort(p), p, side="left") / (len(p) - 1)


def tier_ranks(tiers: np.ndarray, risk_tiers: dict[str, float]) -> np.ndarray:
    order = {name: i for i, (name, _) in enumerate(sorted(risk_tiers.items(), key=lambda kv: kv[1]))}
    return np.array([order[t] for t in tiers], dtype=np.int32)


def previous_scores(wh: Warehouse, score_date: dt.date) -> tuple[dt.date | None, pd.DataFrame]:
    """(previous score date, its customer_id/churn_probability) from churn_scores, before ``score_date``."""
    table = wh.qualified(CHURN_SCORES.name)
    previous = wh.scalar(f"SELECT MAX(score_date) FROM {table} WHERE score_date < :d", {"d": score_date})
    if previous is None:
        return None, pd.DataFrame({"customer_id": [], "churn_probability": []})
    frame = wh.query_df(
        f"SELECT customer_id, churn_probability FROM {table} WHERE score_date = :d ORDER BY customer_id",
        {"d": previous},
    )
    return previous, frame


def probability_change(ids: np.ndarray, probs: np.ndarray, previous: pd.DataFrame) -> np.ndarray:
    """probs minus each customer's previous probability; NaN for customers without one."""
    out = np.full(len(ids), np.nan)
    if len(previous) == 0:
        return out
    prev_ids = previous["customer_id"].to_numpy(dtype=np.int64)
    prev_p = previous["churn_probability"].to_numpy(dtype=np.float64)
    order = np.argsort(prev_ids)
    prev_ids, prev_p = prev_ids[order], prev_p[order]
    pos = np.clip(np.searchsorted(prev_ids, ids), 0, len(prev_ids) - 1)
    found = prev_ids[pos] == ids
    out[found] = probs[found] - prev_p[pos[found]]
    return out


# -- the scoring-run collector -------------------------------------------------------------------------------
class ScoreDetails:
    """Collects value and reasons slice by slice during scoring; adds columns and the reasons table at the end."""

    def __init__(self, config: Config, predictor, score_date: dt.date, segments=None):
        self.segments = segments  # a scoring.segments.SegmentAssigner, or None
        self.config = config
        self.predictor = predictor
        self.score_date = score_date
        self.explain = config.explain
        self._revenue: list[np.ndarray] = []
        self._reasons: list[pd.DataFrame] = []
        self.reason_seconds = 0.0
        self.segment_seconds = 0.0
        self.explained = 0
        self.failed: str | None = None

    @classmethod
    def for_run(cls, wh: Warehouse, config: Config, predictor, score_date: dt.date, model_version: str):
        """With the version's segment model (and yesterday's segments for its hysteresis) when it has one."""
        from pipelines.scoring.segments import SegmentAssigner, previous_segments, segment_model_for

        model = segment_model_for(config, model_version)
        assigner = (
            SegmentAssigner(model, predictor, previous_segments(wh, score_date, model_version)) if model else None
        )
        return cls(config, predictor, score_date, segments=assigner)

    def side_tables(self) -> list[tuple[Table, pa.Table]]:
        """The day's churn_score_reasons and customer_segments rows, for the scores' one atomic replace."""
        from pipelines.contract import CUSTOMER_SEGMENTS

        tables = [(CHURN_SCORE_REASONS, self.reasons_table())]
        if self.segments is not None:
            tables.append((CUSTOMER_SEGMENTS, self.segments.table(self.score_date)))
        return tables

    def _tier_mask(self, tiers: np.ndarray, wanted: list[str] | None) -> np.ndarray:
        if wanted is None:
            return np.ones(len(tiers), dtype=bool)
        return np.isin(tiers, np.array(wanted, dtype=object))

    def add(self, piece: pd.DataFrame, probs: np.ndarray) -> None:
        from pipelines.scoring.batch import assign_risk_tiers

        self._revenue.append(expected_revenue(piece, self.config.churn.horizon_days))
        tiers = assign_risk_tiers(probs, self.config.scoring.risk_tiers)
        mask = self._tier_mask(tiers, self.explain.reason_tiers)
        pooled = None  # one encoder pass serves both the segments and the numeric attribution
        if self.segments is not None:
            started = time.perf_counter()
            if self.segments.model.uses_embedding:
                from pipelines.models.explain import embeddings

                pooled = embeddings(self.predictor, piece[TEXT_COLUMN].tolist())
            self.segments.add(piece, pooled)
            self.segment_seconds += time.perf_counter() - started
        if not mask.any() or self.failed is not None:
            return
        if not supports_attribution(self.predictor):
            self.failed = f"{type(self.predictor).__name__} has no attribution method"
            logger.warning("no churn_score_reasons for this run: %s", self.failed)
            return
        started = time.perf_counter()
        with_text = self._tier_mask(tiers[mask], self.explain.text_reason_tiers)
        rows = explain_rows(
            self.predictor,
            piece.loc[mask],
            probs[mask],
            top_k=self.explain.reasons_per_customer,
            with_text=with_text,
            max_text_items=self.explain.max_text_items,
            pooled=None if pooled is None else pooled[mask],
        )
        self._reasons.append(rows)
        self.reason_seconds += time.perf_counter() - started
        self.explained += int(mask.sum())

    def score_columns(
        self, wh: Warehouse, ids: np.ndarray, probs: np.ndarray, tiers: np.ndarray
    ) -> dict[str, np.ndarray]:
        """The value/rank/change columns of churn_scores, aligned with ``ids``."""
        revenue = np.concatenate(self._revenue) if self._revenue else np.full(len(ids), np.nan)
        if len(revenue) != len(ids):
            raise ValueError(f"score details saw {len(revenue)} customers, the scores hold {len(ids)}")
        previous_date, previous = previous_scores(wh, self.score_date)
        change = probability_change(ids, probs, previous)
        logger.info(
            "probability change vs %s: %d of %d customers had a previous score",
            previous_date,
            int(np.isfinite(change).sum()),
            len(ids),
        )
        return {
            "expected_revenue": revenue,
            "value_at_risk": probs * revenue,
            "percentile_rank": percentile_rank(probs),
            "probability_change": change,
            "tier_rank": tier_ranks(tiers, self.config.scoring.risk_tiers),
        }

    def reasons_table(self) -> pa.Table:
        import pyarrow as pa

        from pipelines.warehouse.arrow import conform_to_contract

        frame = pd.concat(self._reasons, ignore_index=True) if self._reasons else pd.DataFrame()
        if len(frame) == 0:
            frame = pd.DataFrame({c: [] for c in CHURN_SCORE_REASONS.column_names if c != "score_date"})
        frame.insert(0, "score_date", self.score_date)
        table = pa.Table.from_pandas(frame[CHURN_SCORE_REASONS.column_names], preserve_index=False)
        return conform_to_contract(CHURN_SCORE_REASONS, table)

    def summary(self) -> dict[str, Any]:
        rows = sum(len(r) for r in self._reasons)
        return {
            "reasons": rows,
            "customers_explained": self.explained,
            "reasons_skipped": self.failed,
            "reason_seconds": round(self.reason_seconds, 3),
            "segments": self.segments.counts() if self.segments is not None else None,
            "segment_seconds": round(self.segment_seconds, 3),
            "customers_explained_per_second": round(self.explained / self.reason_seconds, 1)
            if self.reason_seconds > 0
            else None,
        }


def append_columns(table: pa.Table, columns: dict[str, np.ndarray]) -> pa.Table:
    """``table`` with the extra churn_scores columns (NaN -> null)."""
    import pyarrow as pa

    for name, values in columns.items():
        arr = np.asarray(values)
        if arr.dtype.kind == "f":
            table = table.append_column(name, pa.array(arr, pa.float64(), mask=~np.isfinite(arr)))
        else:
            table = table.append_column(name, pa.array(arr, pa.int32()))
    return table
