"""monitor_scores end to end on a small real warehouse (DuckDB and Postgres) with real Evidently.

The model is the labelled stand-in from ``tests/pipelines/scoring/standins.py``; the reference is
passed in (identical to the current population, or shifted), except in the MLflow test, which
registers a version whose run holds ``reference/reference.parquet`` like the registry does.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipelines.contract import ExitCode
from pipelines.features import numeric_feature_names
from pipelines.monitoring import MonitoringError, monitor_scores
from pipelines.scoring import score_customers
from pipelines.validation.html import external_asset_refs
from pipelines.warehouse import open_warehouse

DRIFT_FEATURES = ["days_since_last_order", "orders_90d", "revenue_365d"]


def _rows(config, table, where, params):
    with open_warehouse(config) as wh:
        return wh.query_df(wh.render(f"SELECT * FROM {{{table}}} WHERE {where}"), params)


@pytest.fixture
def scored(tiny_config, standins, monkeypatch):
    """Scores for PAST_DATE (matured by SCORE_DATE) and SCORE_DATE, monitored on 3 features."""
    standins.install_standin(monkeypatch)
    config = tiny_config.with_overrides({"monitoring": {"drift_features": DRIFT_FEATURES}})
    score_customers(config, standins.PAST_DATE, "1", "run-past")
    score_customers(config, standins.SCORE_DATE, "1", "run-today")
    return config


def test_identical_then_shifted_reference(scored, standins):
    config = scored
    day = standins.SCORE_DATE
    reference = standins.current_reference(config)

    same = monitor_scores(config, day, "1", reference=reference, log_to_mlflow=False)
    assert same["retrain"] is False and same["reasons"] == []
    assert same["drift_share"] == 0.0 and same["prediction_drift"] == pytest.approx(0.0, abs=1e-9)
    report = Path(same["report_path"])
    assert report == config.resolve_path(config.monitoring.reports_dir) / "drift" / "2025-03-01.html"
    assert report.stat().st_size > 10_000 and "<html" in report.read_text()[:2000].lower()
    text = report.read_text()  # offline: Evidently inlines its scripts; the title names the day and model
    assert external_asset_refs(text) == [] and "<title>Churn drift 2025-03-01, model v1" in text

    drift = _rows(config, "monitoring_drift", "score_date = :d", {"d": day})
    by_metric = drift.groupby("metric")["feature"].apply(sorted).to_dict()
    # the report and table show every feature; only DRIFT_FEATURES count toward the decision
    rates = [f"{n}_per_tenure_month" for n in config.monitoring.tenure_normalised_features]
    every_feature = sorted([*numeric_feature_names(config), *rates])
    assert set(DRIFT_FEATURES) < set(every_feature)
    # the ratio features are compared as rates (no Evidently column, so no missing share)
    assert by_metric["feature_drift"] == sorted([*every_feature, *config.monitoring.ratio_features])
    assert by_metric["missing_share"] == every_feature
    assert by_metric["share_drifted_features"] == ["__dataset__"]
    assert by_metric["prediction_drift"] == ["churn_probability"]
    assert by_metric["retrain"] == ["__dataset__"] and "retrain_reason" not in by_metric
    features = drift[drift["metric"] == "feature_drift"].set_index("feature")
    assert sorted(features.index[features["role"] == "monitored"]) == sorted(DRIFT_FEATURES)
    assert set(features.loc[features["role"] == "excluded", "note"]) == {"not in monitoring.drift_features"}
    assert not drift["drifted"].any() and set(drift["model_version"]) == {"1"}

    # backtest: PAST_DATE + 90 days == SCORE_DATE has matured; SCORE_DATE itself has not
    assert [p["score_date"] for p in same["performance"]] == [standins.PAST_DATE.isoformat()]
    perf = _rows(config, "monitoring_performance", "evaluated_on = :d", {"d": day})
    assert set(perf["metric"]) == {"pr_auc", "roc_auc", "brier", "calibration_error", "churn_rate", "n"}
    assert {str(v)[:10] for v in perf["score_date"]} == {"2024-12-01"}
    n_scored = len(_rows(config, "churn_scores", "score_date = :d", {"d": standins.PAST_DATE}))
    assert perf.set_index("metric").loc["n", "value"] == n_scored
    assert same["realized"]["pr_auc"] > config.monitoring.min_pr_auc

    # current = reference +50% on every monitored feature, scores shifted up; and a demanding PR-AUC floor
    shifted = reference.copy()
    shifted[DRIFT_FEATURES] = shifted[DRIFT_FEATURES] / 1.5
    shifted["prediction"] = shifted["prediction"] * 0.5
    strict = config.with_overrides({"monitoring": {"min_pr_auc": 0.99}})
    moved = monitor_scores(strict, day, "1", reference=shifted, log_to_mlflow=False)
    assert moved["retrain"] is True
    assert moved["drift_share"] == pytest.approx(1.0)  # 3 of the 3 monitored features, not 3 of all
    assert moved["prediction_drift"] >= config.monitoring.prediction_drift_threshold
    text = " | ".join(moved["reasons"])
    assert "feature drift" in text and "days_since_last_order" in text
    assert "prediction drift" in text and "realized PR-AUC" in text

    # the partitions were replaced, not appended to
    again = _rows(config, "monitoring_drift", "score_date = :d", {"d": day})
    assert len(again) == len(drift) + len(moved["reasons"])  # one retrain_reason row per reason
    assert again.set_index(["metric", "feature"])["drifted"].any()
    assert len(_rows(config, "monitoring_performance", "evaluated_on = :d", {"d": day})) == len(perf)


def test_monitor_needs_scores(config, standins):
    standins.load_tiny_warehouse(config, customers=20)
    with pytest.raises(MonitoringError, match="no rows for score_date 2025-03-01"):
        monitor_scores(
            config, dt.date(2025, 3, 1), "1", reference=standins.current_reference(config), log_to_mlflow=False
        )


def test_cli_with_registered_reference_and_mlflow_run(config, standins, monkeypatch, tmp_path, capsys):
    """`churn score` / `churn monitor` through the CLI; the reference comes from the registered version's run."""
    import json

    import yaml
    from mlflow.tracking import MlflowClient

    from pipelines.cli.main import main
    from pipelines.tracking import ensure_experiment

    config = config.with_overrides({"monitoring": {"drift_features": DRIFT_FEATURES[:2]}})
    standins.load_tiny_warehouse(config, customers=120)
    standins.install_standin(monkeypatch)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))

    # a registered version whose run holds reference/reference.parquet (what train_and_log logs)
    client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)
    run = client.create_run(ensure_experiment(config, client), run_name="training-standin")
    ref_path = tmp_path / "reference.parquet"
    standins.current_reference(config).to_parquet(ref_path, index=False)
    client.log_artifact(run.info.run_id, str(ref_path), "reference")
    client.create_registered_model(config.registry.model_name)
    version = client.create_model_version(
        config.registry.model_name, source=run.info.artifact_uri, run_id=run.info.run_id
    ).version
    version = str(version)

    assert (
        main(
            [
                "--config",
                str(config_path),
                "score",
                "--date",
                "2025-03-01",
                "--model-version",
                version,
                "--run-id",
                "cli-test",
            ]
        )
        == 0
    )
    scored = json.loads(capsys.readouterr().out)
    assert scored["rows"] > 0 and scored["model_version"] == version

    assert main(["--config", str(config_path), "monitor", "--date", "2025-03-01"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["retrain"] is False and result["model_version"] == version
    mrun = client.get_run(result["mlflow_run_id"])
    assert mrun.data.tags["score_date"] == "2025-03-01" and mrun.data.tags["model_version"] == version
    assert mrun.data.metrics["drift_share"] == 0.0
    artifacts = {a.path for a in client.list_artifacts(result["mlflow_run_id"], "drift")}
    assert {"drift/2025-03-01.html", "drift/monitoring_summary.json"} <= artifacts

    assert main(["--config", str(config_path), "monitor", "--date", "2031-01-01", "--no-mlflow"]) == ExitCode.MONITORING
