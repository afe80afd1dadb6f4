"""The decisions the monitoring DAG makes, as pure functions: which scoring run to monitor, retrain or not."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pipelines.dates import as_date
from pipelines.xcom import latest_event_extra


class NoScoringRunError(LookupError):
    """No churn_scores partition exists for the date asked to be monitored."""


def scoring_run_to_monitor(
    conf: Mapping[str, Any] | None,
    asset_event_extras: Iterable[Mapping[str, Any] | None],
    run_as_of: str,
    scored_version: Any,
) -> dict[str, str]:
    """``{"score_date", "model_version", "reference_start", "reference_end"}`` of the partition to monitor.

    Precedence: the run's ``conf`` (a manual run), else the latest triggering ``churn_scores`` asset event,
    else the run's own as-of date. The model version comes the same way, else from ``scored_version(date)``
    (the version that wrote that partition). Raises NoScoringRunError when nothing scored the date. A chosen
    reference period (``conf["reference_start"]`` / ``["reference_end"]``) is checked here, so bad conf fails fast.
    """
    from pipelines.monitoring.monitor import reference_period

    conf = dict(conf or {})
    extra = latest_event_extra(asset_event_extras)
    score_date = as_date(conf.get("score_date") or extra.get("score_date") or run_as_of).isoformat()
    version = conf.get("model_version") or extra.get("model_version") or scored_version(score_date)
    if not version:
        raise NoScoringRunError(f"no churn_scores partition for {score_date}: run churn_scoring first")
    period = reference_period(conf.get("reference_start"), conf.get("reference_end"))
    return {
        "score_date": score_date,
        "model_version": str(version),
        "reference_start": period[0].isoformat() if period else None,
        "reference_end": period[1].isoformat() if period else None,
    }


def should_retrain(result: Mapping[str, Any] | None) -> bool:
    """Whether a monitoring result asks for retraining."""
    return bool(result and result.get("retrain"))


def retrain_reason(result: Mapping[str, Any] | None) -> str:
    """One line saying why monitoring asked for retraining (goes into the triggered run's conf)."""
    reasons = list((result or {}).get("reasons") or [])
    return "; ".join(str(r) for r in reasons) or "monitoring requested retraining"
