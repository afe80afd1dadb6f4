"""Reading drift numbers out of an Evidently 0.7 snapshot: a hand-made dict and a real run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.models.metrics import expected_calibration_error
from pipelines.monitoring import performance_metrics, summarize_snapshot
from pipelines.monitoring.drift import run_drift_report

VD = "evidently:metric_v2:ValueDrift"


def _vd(metric_id, column, value, method="wasserstein", threshold=0.1):
    return {
        "id": metric_id,
        "metric_name": f"ValueDrift(column={column})",
        "config": {"type": VD, "column": column, "method": method, "threshold": threshold},
        "value": value,
    }


def test_summarize_handmade_snapshot_dict():
    snapshot = {
        "metrics": [
            {
                "id": "c",
                "metric_name": "DriftedColumnsCount(...)",
                "config": {"type": "evidently:metric_v2:DriftedColumnsCount"},
                "value": {"count": 2.0, "share": 0.5},
            },
            _vd("a", "recency", 0.42),  # test says FAIL
            _vd("b", "orders", 0.05),  # test says SUCCESS
            _vd("k", "ks_feature", 0.01, method="ks", threshold=0.05),  # no test: p-value below threshold -> drift
            _vd("n", "empty", None),  # unusable value: skipped
            _vd("p", "prediction", 0.2),
            {
                "id": "m",
                "metric_name": "MissingValueCount(column=orders)",
                "config": {"type": "evidently:metric_v2:MissingValueCount", "column": "orders"},
                "value": {"count": 3.0, "share": 0.25},
            },
            {"id": "r", "metric_name": "RowCount()", "config": {"type": "evidently:metric_v2:RowCount"}, "value": 12.0},
            {"id": "x", "metric_name": "SomethingNew()", "config": {"type": "evidently:metric_v2:New"}, "value": [1]},
        ],
        "tests": [
            {"status": "FAIL", "metric_config": {"metric_id": "a"}},
            {"status": "SUCCESS", "metric_config": {"metric_id": "b"}},
            {"status": "FAIL", "metric_config": {"metric_id": "p"}},
            {"status": "FAIL"},  # malformed: ignored
        ],
    }
    s = summarize_snapshot(snapshot)
    assert s.drift_share == 0.5 and s.drifted_count == 2.0
    assert s.drifted_features == ["ks_feature", "recency"]
    assert s.features["orders"].drifted is False and s.features["recency"].value == pytest.approx(0.42)
    assert "empty" not in s.features
    assert s.prediction.value == pytest.approx(0.2) and s.prediction.drifted
    assert s.missing_share == {"orders": 0.25} and s.row_count == 12.0
    # without DriftedColumnsCount the share is derived from the per-feature flags
    no_count = summarize_snapshot({"metrics": snapshot["metrics"][1:4], "tests": snapshot["tests"]})
    assert no_count.drift_share == pytest.approx(2 / 3)
    assert summarize_snapshot({}).drift_share is None


def test_real_evidently_snapshot_of_a_shifted_sample(config):
    """The parse against a real Evidently 0.7 snapshot (identical data is covered by test_monitor)."""
    rng = np.random.default_rng(0)
    n = 400
    ref = pd.DataFrame(
        {
            "a": rng.gamma(2.0, 10.0, n),
            "b": rng.poisson(3, n).astype(float),
            "c": rng.normal(50, 5, n),
            "prediction": rng.beta(2, 5, n),
        }
    )
    ref.loc[:9, "c"] = np.nan  # missing values are fine
    shifted = ref.copy()
    shifted[["a", "c"]] *= 1.5  # +50% on two of three features
    shifted["prediction"] = np.clip(shifted["prediction"] + 0.2, 0, 1)

    snapshot = run_drift_report(ref, shifted, ["a", "b", "c"], config)
    s = summarize_snapshot(snapshot.dict())
    assert s.drifted_features == ["a", "c"] and not s.features["b"].drifted
    assert s.drift_share == pytest.approx(2 / 3) and s.drifted_count == 2
    assert s.features["a"].method == "wasserstein_guarded" and s.features["a"].value > 0.1
    assert s.features["b"].value == pytest.approx(0.0, abs=1e-9)
    assert s.prediction.drifted and s.prediction.value > config.monitoring.prediction_drift_threshold
    assert s.missing_share["c"] == pytest.approx(10 / n) and s.missing_share["a"] == 0.0
    assert s.row_count == n


def test_performance_metrics_and_calibration():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    m = performance_metrics(y, p)
    assert m["n"] == 4 and m["churn_rate"] == 0.5
    assert m["roc_auc"] == pytest.approx(0.75) and m["pr_auc"] == pytest.approx(0.8333, abs=1e-3)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    # bins: [0.1]->|0.1-0|, [0.35]->|0.35-1|, [0.4]->|0.4-0|, [0.8]->|0.8-1|, each weight 1/4
    assert expected_calibration_error(y, p) == pytest.approx((0.1 + 0.65 + 0.4 + 0.2) / 4)
    one_class = performance_metrics(np.zeros(5), np.full(5, 0.2))
    assert "pr_auc" not in one_class and "roc_auc" not in one_class and one_class["churn_rate"] == 0.0
