"""The retention DAG's one decision, as a pure function: which action date to assign."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pipelines.dates import as_date
from pipelines.xcom import latest_event_extra


def action_date_to_assign(
    conf: Mapping[str, Any] | None, asset_event_extras: Iterable[Mapping[str, Any] | None], run_as_of: str
) -> str:
    """``conf["action_date"]`` (a manual run), else the latest ``churn_scores`` event's score date, else the run's date."""
    conf = dict(conf or {})
    extra = latest_event_extra(asset_event_extras)
    return as_date(conf.get("action_date") or extra.get("score_date") or run_as_of).isoformat()
