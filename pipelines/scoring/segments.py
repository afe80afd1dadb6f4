"""Assign every scored customer a segment with the model version's segment model (``customer_segments``).

The segment model is the ``segments/`` artifact of the version's training run
(:mod:`pipelines.training.segments`); a version trained before segments existed has none, and scoring says
so and writes no segments rather than inventing them.

Stability: a customer keeps the segment of the previous score date (same model version) unless they have
new activity since (an order, an event, a review) *and* another centroid is clearly closer (the hysteresis of
:meth:`pipelines.models.segments.SegmentModel.predict`). So with unchanged data nobody changes segment, however
the windowed features slide from one day to the next; a new model version assigns everyone afresh.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipelines.contract import CHURN_SCORES, CUSTOMER_SEGMENTS, ID_COLUMN, TEXT_COLUMN
from pipelines.models.segments import SegmentModel

if TYPE_CHECKING:
    import pyarrow as pa

    from pipelines.config import Config
    from pipelines.warehouse import Warehouse

logger = logging.getLogger(__name__)


def segment_model_for(config: Config, model_version: str) -> SegmentModel | None:
    """The registered version's segment model, or None (with a warning) when its run logged none."""
    from pipelines import tracking as t
    from pipelines.training.segments import SEGMENTS_ARTIFACT

    try:
        return t.load_version_artifact(config, model_version, SEGMENTS_ARTIFACT, SegmentModel.load, "churn-segments-")
    except Exception as exc:  # no artifact (older version) or no registry entry (a stand-in model)
        logger.warning(
            "no segment model for %s v%s (%s): customer_segments not written",
            config.registry.model_name,
            model_version,
            exc,
        )
        return None


def previous_segments(wh: Warehouse, score_date: dt.date, model_version: str) -> pd.DataFrame:
    """customer_id, segment_id, active of the latest earlier score date, if the same model version made it.

    ``active``: the customer has a new order, event or review since that date. Empty when there is no
    earlier date or another version scored it (its segment ids mean other clusters).
    """
    empty = pd.DataFrame({"customer_id": [], "segment_id": [], "active": []})
    if not wh.table_exists(CUSTOMER_SEGMENTS.name):
        return empty
    segments, scores = wh.qualified(CUSTOMER_SEGMENTS.name), wh.qualified(CHURN_SCORES.name)
    day = wh.scalar(f"SELECT MAX(score_date) FROM {segments} WHERE score_date < :d", {"d": score_date})
    if day is None:
        return empty
    frame = wh.query_df(
        f"SELECT g.customer_id, g.segment_id FROM {segments} g JOIN {scores} s "
        "ON s.score_date = g.score_date AND s.customer_id = g.customer_id "
        "WHERE g.score_date = :d AND s.model_version = :v",
        {"d": day, "v": str(model_version)},
    )
    start, end = _midnight(day), _midnight(score_date)
    active = wh.query_df(
        wh.render(
            "SELECT customer_id FROM {orders} WHERE ordered_at >= :s AND ordered_at < :e "
            "UNION SELECT customer_id FROM {events} WHERE event_at >= :s AND event_at < :e "
            "UNION SELECT customer_id FROM {reviews} WHERE reviewed_at >= :s AND reviewed_at < :e"
        ),
        {"s": start, "e": end},
    )["customer_id"]
    frame["active"] = frame["customer_id"].isin(active)
    logger.info(
        "segments of %s (v%s): %d customers, %d with new activity since",
        day,
        model_version,
        len(frame),
        int(frame["active"].sum()),
    )
    return frame


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


class SegmentAssigner:
    """Segment ids slice by slice (``add``), then the ``customer_segments`` partition (``table``)."""

    def __init__(self, model: SegmentModel, predictor, previous: pd.DataFrame):
        self.model = model
        self.predictor = predictor
        prev = previous.sort_values("customer_id")
        self._prev_ids = prev["customer_id"].to_numpy(dtype=np.int64)
        self._prev_seg = prev["segment_id"].to_numpy(dtype=np.int64)
        self._prev_active = prev["active"].to_numpy(dtype=bool)
        self._ids: list[np.ndarray] = []
        self._segments: list[np.ndarray] = []

    def _previous(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(previous segment or -1, whether it is kept regardless of the features: no new activity)."""
        out = np.full(len(ids), -1, dtype=np.int64)
        frozen = np.zeros(len(ids), dtype=bool)
        if len(self._prev_ids):
            pos = np.clip(np.searchsorted(self._prev_ids, ids), 0, len(self._prev_ids) - 1)
            found = self._prev_ids[pos] == ids
            out[found] = self._prev_seg[pos[found]]
            frozen[found] = ~self._prev_active[pos[found]]
        return out, frozen

    def add(self, piece: pd.DataFrame, emb: np.ndarray | None = None) -> None:
        """Assign ``piece``; ``emb``: its encoder embeddings, computed here when the model needs them and none came."""
        from pipelines.models.explain import embeddings

        ids = piece[ID_COLUMN].to_numpy(dtype=np.int64)
        if self.model.uses_embedding and emb is None:
            emb = embeddings(self.predictor, piece[TEXT_COLUMN].tolist())
        self._ids.append(ids)
        previous, frozen = self._previous(ids)
        segments = self.model.predict(piece, emb, previous=previous)
        self._segments.append(np.where(frozen, previous, segments).astype(np.int32))

    def table(self, score_date: dt.date) -> pa.Table:
        import pyarrow as pa

        ids = np.concatenate(self._ids) if self._ids else np.empty(0, np.int64)
        seg = np.concatenate(self._segments) if self._segments else np.empty(0, np.int32)
        names = np.array(self.model.names, dtype=object)
        return pa.table(
            {
                "score_date": pa.array([score_date] * len(ids), pa.date32()),
                "customer_id": pa.array(ids, pa.int64()),
                "segment_id": pa.array(seg.astype(np.int32), pa.int32()),
                "segment_name": pa.array(names[seg].tolist() if len(seg) else [], pa.string()),
            }
        )

    def counts(self) -> dict[str, int]:
        seg = np.concatenate(self._segments) if self._segments else np.empty(0, np.int32)
        values, counts = np.unique(seg, return_counts=True)
        return {self.model.names[int(v)]: int(c) for v, c in zip(values, counts, strict=True)}
