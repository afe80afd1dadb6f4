"""Batch scoring of the active population, written atomically to ``churn_scores``."""

from pipelines.scoring.batch import (
    ScoringError,
    assign_risk_tiers,
    build_scores_table,
    check_scoring_inputs,
    population_count,
    predict_in_batches,
    score_customers,
)

__all__ = [
    "ScoringError",
    "assign_risk_tiers",
    "build_scores_table",
    "check_scoring_inputs",
    "population_count",
    "predict_in_batches",
    "score_customers",
]
