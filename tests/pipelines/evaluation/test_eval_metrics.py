"""Metrics on inputs whose answers are known by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipelines.evaluation import bootstrap_metric_difference, segment_metrics
from pipelines.models.metrics import choose_threshold, compute_metrics, expected_calibration_error


def test_perfect_ranking():
    y = np.array([1] * 30 + [0] * 70)
    p = np.linspace(1, 0, 100)
    m = compute_metrics(y, p)
    assert m["roc_auc"] == 1.0
    assert m["pr_auc"] == 1.0
    assert m["churn_rate"] == pytest.approx(0.3)
    assert m["n"] == 100
    assert m["lift_at_10"] == pytest.approx(1 / 0.3)
    assert m["lift_at_20"] == pytest.approx(1 / 0.3)
    assert m["capture_at_10"] == pytest.approx(10 / 30)
    assert m["capture_at_20"] == pytest.approx(20 / 30)
    assert m["f1"] == 1.0 and m["precision"] == 1.0 and m["recall"] == 1.0


def test_known_values_and_fixed_threshold():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    m = compute_metrics(y, p, threshold=0.5)
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["brier"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.01) / 4)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.4, 0.9])))
    assert m["threshold"] == 0.5
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.5)


def test_threshold_comes_from_validation():
    y_val = np.array([0, 0, 0, 1, 1, 1])
    p_val = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    thr = choose_threshold(y_val, p_val)
    assert 0.3 < thr <= 0.7
    m = compute_metrics(np.array([0, 1]), np.array([0.5, 0.6]), threshold=thr)
    assert m["threshold"] == thr


def test_ece():
    assert expected_calibration_error([0, 1], [0.0, 1.0]) == pytest.approx(0.0)
    # all scores 0.8 but half churn -> |0.8 - 0.5|
    assert expected_calibration_error([0, 1, 0, 1], [0.8] * 4) == pytest.approx(0.3)


def test_single_class_is_nan_not_crash():
    m = compute_metrics(np.zeros(10, dtype=int), np.linspace(0, 1, 10))
    assert math.isnan(m["roc_auc"]) and math.isnan(m["pr_auc"]) and math.isnan(m["lift_at_10"])


def test_segment_metrics():
    frame = pd.DataFrame(
        {"churned": [1, 0, 1, 0, 0, 0], "tenure_band": ["a", "a", "a", "b", "b", "b"], "acquisition_channel": ["x"] * 6}
    )
    p = np.array([0.9, 0.1, 0.8, 0.2, 0.3, 0.1])
    seg = segment_metrics(frame, p, ["tenure_band", "acquisition_channel"])
    a = seg[(seg.segment == "tenure_band") & (seg.value == "a")].iloc[0]
    assert a.n == 3 and a.churn_rate == pytest.approx(2 / 3) and a.roc_auc == 1.0
    b = seg[(seg.segment == "tenure_band") & (seg.value == "b")].iloc[0]
    assert math.isnan(b.roc_auc) and math.isnan(b.pr_auc)
    assert len(seg) == 3


def test_bootstrap_difference():
    rng = np.random.default_rng(0)
    y = (rng.random(600) < 0.3).astype(int)
    good = np.clip(y * 0.5 + rng.normal(0.25, 0.2, y.size), 0, 1)
    noise = rng.random(y.size)
    better = bootstrap_metric_difference(y, good, noise, metric="pr_auc", rounds=200, seed=1)
    assert better["ci_low"] > 0 and better["mean"] > 0.2
    same = bootstrap_metric_difference(y, good, good.copy(), metric="pr_auc", rounds=200, seed=1)
    assert same["ci_low"] <= 0 <= same["ci_high"]
    again = bootstrap_metric_difference(y, good, noise, metric="pr_auc", rounds=200, seed=1)
    assert again == better
    with pytest.raises(ValueError, match="unknown metric"):
        bootstrap_metric_difference(y, good, noise, metric="accuracy")
