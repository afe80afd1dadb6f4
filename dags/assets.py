"""Every Asset the churn DAGs produce or consume, defined once.

Assets are how the DAGs hand work to each other (Airflow 3 data-aware scheduling):

    churn_training --(register_challenger)--> churn_model_registered
    churn_training --(announce_champion)----> churn_model_champion --schedules--> churn_scoring
    churn_scoring  --(publish_scores)-------> churn_scores         --schedules--> churn_monitoring
    churn_monitoring --(monitor_scores)-----> churn_monitoring     (drift/performance tables + HTML report)
    churn_scoring  --(publish_scores)-------> churn_scores         --schedules--> churn_retention
    churn_retention --(assign_actions)------> churn_retention     (retention_actions/outcomes/effects)
    churn_monitoring --TriggerDagRunOperator(conf={"reason": ...})--> churn_training

The URIs are identifiers, not connection strings: the real locations come from the config
(``warehouse.url`` / ``CHURN_WAREHOUSE_URL`` and ``registry.tracking_uri`` / ``MLFLOW_TRACKING_URI``).
"""

from __future__ import annotations

from airflow.sdk import Asset

# Raw input tables (validated by Great Expectations before training and before scoring).
RAW_TABLES = Asset(name="churn_raw_tables", uri="churn://warehouse/raw", group="warehouse")

# A new model version was registered in the MLflow registry (the challenger), whether or not promoted.
REGISTERED_MODEL = Asset(name="churn_model_registered", uri="churn://registry/churn-risk", group="model")

# The registry alias @champion moved to a new version: scoring re-runs with the new champion.
CHAMPION_MODEL = Asset(name="churn_model_champion", uri="churn://registry/churn-risk/champion", group="model")

# One partition of the churn_scores table (score_date) was (re)written; extra = score_date, model_version.
CHURN_SCORES = Asset(name="churn_scores", uri="churn://warehouse/churn_scores", group="warehouse")

# monitoring_drift / monitoring_performance partitions and reports/drift/<score_date>.html.
MONITORING = Asset(name="churn_monitoring", uri="churn://warehouse/monitoring", group="warehouse")

# retention_actions / retention_outcomes / retention_effects partitions; extra = action_date, policy_version.
RETENTION = Asset(name="churn_retention", uri="churn://warehouse/retention", group="warehouse")

ALL_ASSETS = (RAW_TABLES, REGISTERED_MODEL, CHAMPION_MODEL, CHURN_SCORES, MONITORING, RETENTION)
