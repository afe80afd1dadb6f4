"""The BG/NBD reference row of the evaluation job: ranking by fewer expected purchases, calibrated on validation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pipelines.evaluation.job import bgnbd_reference_metrics


def _split(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    expected = rng.gamma(1.0, 1.0, n)
    churned = (rng.random(n) < np.exp(-expected)).astype(int)  # fewer expected purchases, more churn
    return pd.DataFrame({"bgnbd_expected_purchases": expected, "churned": churned})


def test_reference_ranks_by_fewer_expected_purchases():
    sets = SimpleNamespace(validation=_split(800, 1), test=_split(800, 2))
    out = bgnbd_reference_metrics(sets, "centered_isotonic")
    direct = roc_auc_score(sets.test["churned"], -sets.test["bgnbd_expected_purchases"])
    assert out["test"]["roc_auc"] == pytest.approx(direct, abs=1e-9)  # calibration keeps the ranking
    assert out["test"]["roc_auc"] > 0.6 and 0 < out["val"]["pr_auc"] <= 1


def test_no_reference_without_the_feature():
    frame = pd.DataFrame({"churned": [0, 1]})
    assert bgnbd_reference_metrics(SimpleNamespace(validation=frame, test=frame), "platt") == {}
