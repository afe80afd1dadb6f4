"""Retention: one action per scored customer, run as an experiment, measured against a permanent holdout.

Public jobs: ``assign_actions`` (decide and log the day's actions with propensities), ``measure_outcomes``
(join matured assignments with orders), ``compute_effects`` (uplift per action with CIs, policy values
off-policy), ``learn_policy`` (fit and register the uplift policy).
"""

from pipelines.retention.assign import RetentionError, assign_actions, holdout_mask
from pipelines.retention.effects import compute_effects
from pipelines.retention.outcomes import measure_outcomes

__all__ = ["RetentionError", "assign_actions", "compute_effects", "holdout_mask", "measure_outcomes"]
