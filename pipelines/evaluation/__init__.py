"""Evaluation of trained runs: test-split metrics of every candidate, segments, plots, paired bootstraps."""

from pipelines.evaluation.job import evaluate_run, summary_table
from pipelines.evaluation.metrics import bootstrap_metric_difference, segment_metrics
from pipelines.evaluation.plots import PLOT_FILES, save_plots

__all__ = [
    "PLOT_FILES",
    "bootstrap_metric_difference",
    "evaluate_run",
    "save_plots",
    "segment_metrics",
    "summary_table",
]
