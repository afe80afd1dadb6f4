"""An operator's world for the plugin tests: a champion in a real MLflow store and a warehouse with a few
days of scores, drift results and realised performance."""

from __future__ import annotations

import datetime as dt

import pytest

DAYS = [dt.date(2026, 1, 1) + dt.timedelta(days=7 * i) for i in range(4)]


def fill_ops_state(config) -> None:
    import numpy as np
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from pipelines.monitoring.verdict import EXCLUDED, MONITORED, DriftVerdict, FeatureDrift
    from pipelines.warehouse import open_warehouse

    client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)
    experiment = client.create_experiment("churn-risk", artifact_location=(config.resolve_path("mlartifacts")).as_uri())
    run = client.create_run(experiment, run_name="train-2026-01-01")
    for key, value in {
        "test_pr_auc": 0.61234,
        "test_roc_auc": 0.8123,
        "test_n": 973.0,
        "transformer_test_pr_auc": 0.59,
        "baseline_test_pr_auc": 0.61234,
        "baseline_test_n": 973.0,
    }.items():
        client.log_metric(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)
    name = config.registry.model_name
    client.create_registered_model(name)
    version = client.create_model_version(name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    for key, value in {
        "candidate_kind": "baseline",
        "as_of": "2026-01-01",
        "promoted_at": "2026-01-01T03:12:45.123456+00:00",
        "promotion_reason": "auto-promotion: first model (no champion yet)",
    }.items():
        client.set_model_version_tag(name, version.version, key, value)
    client.set_registered_model_alias(name, "champion", version.version)

    rng = np.random.default_rng(0)
    now = pd.Timestamp("2026-01-01T05:00:00.123456Z")
    with open_warehouse(config) as wh:
        wh.init_schema()
        for i, day in enumerate(DAYS):
            p = rng.beta(2, 5, size=200)
            tiers = np.where(p >= 0.6, "high", np.where(p >= 0.3, "medium", "low"))
            wh.replace_partition(
                "churn_scores",
                pd.DataFrame(
                    {
                        "customer_id": np.arange(200),
                        "score_date": day,
                        "churn_probability": p,
                        "risk_tier": tiers,
                        "model_name": name,
                        "model_version": version.version,
                        "run_id": f"scheduled__{day}",
                        "scored_at": now + pd.Timedelta(days=7 * i),
                    }
                ),
                "score_date",
                day,
            )
            verdict = DriftVerdict(  # the monitor's one decision per day; the last day says retrain
                score_date=day.isoformat(),
                model_version=str(version.version),
                reference="the training reference of version 1",
                method="wasserstein",
                features=(
                    FeatureDrift("orders_90d", MONITORED, 0.2 if i == 3 else 0.01, 0.1, i == 3),
                    FeatureDrift("days_since_last_order", MONITORED, 0.02, 0.1, False),
                    FeatureDrift("orders_365d", EXCLUDED, 0.5, 0.1, True, "grows with shop age"),
                ),
                drift_share_threshold=0.5,
                feature_drift_threshold=0.1,
                prediction_drift=0.02,
                prediction_drift_threshold=0.1,
                min_pr_auc=0.3,
                reasons=("1/2 monitored features drifted (share 0.50 >= 0.50): orders_90d",) if i == 3 else (),
            )
            rows = pd.DataFrame(verdict.table_rows()).assign(
                score_date=day, model_version=str(version.version), report_path=None, computed_at=now
            )
            wh.replace_partition("monitoring_drift", rows, "score_date", day)
        evaluated = DAYS[-1]
        rows = [
            (DAYS[0], evaluated, version.version, metric, value, now)
            for metric, value in {"pr_auc": 0.58, "roc_auc": 0.79, "brier": 0.16, "n": 200.0}.items()
        ]
        wh.replace_partition(
            "monitoring_performance",
            pd.DataFrame(
                rows, columns=["score_date", "evaluated_on", "model_version", "metric", "value", "computed_at"]
            ),
            "evaluated_on",
            evaluated,
        )


@pytest.fixture
def ops_config(config):
    """The ``config`` fixture with a champion, four weekly scoring days, drift and one matured day."""
    fill_ops_state(config)
    return config
