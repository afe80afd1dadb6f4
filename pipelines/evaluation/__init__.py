"""Evaluation metrics and plots for churn models (numpy/sklearn/matplotlib only, no torch)."""

from pipelines.evaluation.metrics import (
    bootstrap_metric_difference,
    choose_threshold,
    compute_metrics,
    expected_calibration_error,
    segment_metrics,
)
from pipelines.evaluation.plots import PLOT_FILES, save_plots

__all__ = [
    "PLOT_FILES",
    "bootstrap_metric_difference",
    "choose_threshold",
    "compute_metrics",
    "expected_calibration_error",
    "save_plots",
    "segment_metrics",
]
