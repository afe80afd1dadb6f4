"""Training of the churn candidates: transformer (encoder + numerics) and LightGBM baseline."""

from pipelines.training.fit import CandidateResult, FitResult, choose_candidate, fit_candidates

__all__ = ["CandidateResult", "FitResult", "choose_candidate", "fit_candidates"]
