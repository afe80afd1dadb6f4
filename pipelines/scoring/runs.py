"""Which scoring runs exist: the model version that wrote a ``churn_scores`` partition."""

from __future__ import annotations

import datetime as dt

from pipelines.config import Config
from pipelines.dates import as_date


def latest_scored_version(config: Config, score_date: str | dt.date) -> str | None:
    """The model version that wrote the churn_scores partition of ``score_date`` (None if none)."""
    from pipelines.warehouse import open_warehouse

    with open_warehouse(config) as wh:
        value = wh.scalar(
            wh.render("SELECT MAX(model_version) FROM {churn_scores} WHERE score_date = :score_date"),
            {"score_date": as_date(score_date)},
        )
    return None if value is None else str(value)
