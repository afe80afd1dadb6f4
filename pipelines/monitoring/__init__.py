"""Drift (Evidently) and realized-performance monitoring of the written scores; the retrain signal."""

from pipelines.monitoring.drift import DriftSummary, run_drift_report, summarize_snapshot
from pipelines.monitoring.monitor import (
    MonitoringError,
    decide,
    drift_verdict,
    load_reference,
    monitor_scores,
    reference_period,
)
from pipelines.monitoring.performance import backtest, performance_metrics
from pipelines.monitoring.verdict import DriftVerdict, FeatureDrift, make_verdict

__all__ = [
    "DriftSummary",
    "DriftVerdict",
    "FeatureDrift",
    "drift_verdict",
    "make_verdict",
    "reference_period",
    "MonitoringError",
    "backtest",
    "decide",
    "load_reference",
    "monitor_scores",
    "performance_metrics",
    "run_drift_report",
    "summarize_snapshot",
]
