"""Drift (Evidently) and realized-performance monitoring of the written scores; the retrain signal."""

from pipelines.monitoring.drift import DriftSummary, run_drift_report, summarize_snapshot
from pipelines.monitoring.monitor import MonitoringError, decide, load_reference, monitor_scores
from pipelines.monitoring.performance import backtest, expected_calibration_error, performance_metrics

__all__ = [
    "DriftSummary",
    "MonitoringError",
    "backtest",
    "decide",
    "expected_calibration_error",
    "load_reference",
    "monitor_scores",
    "performance_metrics",
    "run_drift_report",
    "summarize_snapshot",
]
