"""Training of the churn candidates (transformer, LightGBM baseline) and the job that logs the MLflow run."""

from pipelines.training.fit import CandidateResult, FitResult, choose_candidate, fit_candidates
from pipelines.training.job import train_and_log

__all__ = ["CandidateResult", "FitResult", "choose_candidate", "fit_candidates", "train_and_log"]
