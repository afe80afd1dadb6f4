"""The drift card of the operator page: the newest monitoring day's one decision, read back from the
``retrain`` / ``retrain_reason`` / ``feature_drift`` (role, note) rows the monitor's ``DriftVerdict`` wrote to
``monitoring_drift``, so the page says word for word what the log, the table and the report say.

Read from the rows rather than through ``DriftVerdict.from_rows``: importing ``pipelines.monitoring`` pulls in
Evidently and torch (7 s of CPU), too much for a page request in the API server.
"""

from __future__ import annotations

import logging
from typing import Any

from pipelines.config import Config
from pipelines.contract import DATASET_LEVEL_FEATURE

logger = logging.getLogger(__name__)


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else number


def verdict_from_rows(rows: list[dict[str, Any]], score_date: str, model_version: str | None) -> dict[str, Any] | None:
    """The card's dict from one partition's rows; None when it predates verdicts (no ``retrain`` row)."""
    by_key = {(str(r["metric"]), str(r["feature"])): r for r in rows}
    decision = by_key.get(("retrain", DATASET_LEVEL_FEATURE))
    if decision is None:
        return None
    features = [r for r in rows if r["metric"] == "feature_drift"]
    monitored = [r for r in features if (r.get("role") or "monitored") == "monitored"]
    excluded = [r for r in features if r.get("role") == "excluded"]
    share = by_key.get(("share_drifted_features", DATASET_LEVEL_FEATURE), {})
    prediction = next((r for r in rows if r["metric"] == "prediction_drift"), {})
    realized = by_key.get(("realized_pr_auc", DATASET_LEVEL_FEATURE))
    reasons = sorted((r for r in rows if r["metric"] == "retrain_reason"), key=lambda r: _num(r["value"]) or 0)
    return {
        "available": True,
        "score_date": score_date,
        "model_version": model_version,
        "retrain": bool(decision.get("drifted")),
        "headline": str(decision.get("note") or ""),
        "reasons": [str(r.get("note") or "") for r in reasons],
        "reference": str(by_key.get(("reference", DATASET_LEVEL_FEATURE), {}).get("note") or ""),
        "monitored": [{"name": str(r["feature"]), "drifted": bool(r["drifted"])} for r in monitored],
        "drifted_features": sorted(str(r["feature"]) for r in monitored if r["drifted"]),
        "drift_share": _num(share.get("value")),
        "drift_share_threshold": _num(share.get("threshold")),
        "prediction": {
            "value": _num(prediction.get("value")),
            "threshold": _num(prediction.get("threshold")),
            "drifted": bool(prediction.get("drifted")),
        },
        "realized": {"pr_auc": _num(realized["value"]), "min_pr_auc": _num(realized["threshold"])}
        if realized
        else None,
        "excluded": [
            {"name": str(r["feature"]), "drifted": bool(r["drifted"]), "reason": str(r.get("note") or "")}
            for r in excluded
        ],
    }


def drift_card(config: Config) -> dict[str, Any] | None:
    """The newest day's verdict, or None when there is none (the page then shows the plain drift summary)."""
    from pipelines.ops.status import _warehouse_missing

    if _warehouse_missing(config):
        return None
    try:
        from pipelines.warehouse import open_warehouse

        with open_warehouse(config) as wh:
            if not wh.table_exists("monitoring_drift"):
                return None
            latest = wh.scalar(wh.render("SELECT MAX(score_date) FROM {monitoring_drift}"))
            if latest is None:
                return None
            frame = wh.query_df(wh.render("SELECT * FROM {monitoring_drift} WHERE score_date = :d"), {"d": latest})
    except Exception as exc:
        logger.warning("ops page: drift verdict unavailable: %s", exc)
        return None
    if "note" not in frame.columns:  # a warehouse from before verdicts
        return None
    version = str(frame["model_version"].iloc[0]) if len(frame) else None
    return verdict_from_rows(frame.to_dict("records"), str(latest)[:10], version)
