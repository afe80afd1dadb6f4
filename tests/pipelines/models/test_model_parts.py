"""Calibration, numeric scaling and length-bucketed batching."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.models import Calibrator, NumericScaler, fit_calibrator
from pipelines.models.batching import LengthGroupedBatchSampler, pad_batch, sorted_batches


@pytest.mark.parametrize(
    ("method", "stored"), [("centered_isotonic", "isotonic"), ("isotonic", "isotonic"), ("platt", "platt")]
)
def test_calibration_is_monotone_in_unit_interval(method, stored):
    rng = np.random.default_rng(0)
    raw = rng.random(500)
    y = (rng.random(500) < raw**2).astype(int)
    cal = fit_calibrator(y, raw, method)
    assert cal.method == stored
    grid = np.linspace(-0.5, 1.5, 401)
    out = cal(grid)
    assert ((out >= 0) & (out <= 1)).all()
    assert (np.diff(out) >= -1e-12).all()
    again = Calibrator.from_dict(cal.to_dict())
    np.testing.assert_allclose(again(raw), cal(raw))
    assert np.mean((cal(raw) - y) ** 2) <= np.mean((raw - y) ** 2) + 1e-9


def test_centered_isotonic_puts_one_knot_at_the_centre_of_each_step():
    # isotonic steps: {0.1} -> 0, {0.2, 0.3} -> 0.5 (pooled violator), {0.4} -> 1; the one-row end steps
    # are smoothed to (0+1)/(1+2) and (1+1)/(1+2) (a single row supports no certainty)
    cal = fit_calibrator([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], "centered_isotonic")
    np.testing.assert_allclose(cal.x, [0.1, 0.25, 0.4])
    np.testing.assert_allclose(cal.y, [1 / 3, 0.5, 2 / 3])
    np.testing.assert_allclose(
        cal([0.0, 0.175, 0.25, 0.3, 0.9]), [1 / 3, 5 / 12, 0.5, 1 / 2 + 1 / 18, 2 / 3], atol=1e-5
    )


@pytest.mark.parametrize("method", ["centered_isotonic", "isotonic", "platt"])
def test_calibrated_probabilities_are_never_0_or_1_and_break_ties_by_raw_score(method):
    """Separable validation data (isotonic ends at 0 and 1) and saturated raw scores still give (0, 1)."""
    rng = np.random.default_rng(1)
    n = 400
    raw = np.r_[rng.uniform(0.0, 0.3, n // 2), rng.uniform(0.7, 1.0, n // 2)]
    y = np.r_[np.zeros(n // 2, int), np.ones(n // 2, int)]
    y[rng.choice(n, 20, replace=False)] ^= 1  # some noise in the middle, certainty at both ends
    cal = fit_calibrator(y, raw, method)
    floor = 1 / (n + 2)
    grid = np.r_[-50.0, 0.0, np.sort(rng.random(5000)), 1.0, 50.0]
    out = cal(grid)
    assert (out > 0).all() and (out < 1).all()
    assert out.min() >= floor * (1 - 1e-6) and out.max() <= 1 - floor * (1 - 1e-6)
    assert (np.diff(out) > 0).all()  # strictly increasing: no ties where the raw scores differ
    again = Calibrator.from_dict(cal.to_dict())
    np.testing.assert_array_equal(again(grid), out)


def test_isotonic_end_steps_are_smoothed_by_their_size():
    # 100 rows without a churner at the bottom: 1/102, not 0; 50 churners at the top: 51/52, not 1
    raw = np.r_[np.linspace(0.0, 0.2, 100), np.linspace(0.3, 0.6, 100), np.linspace(0.8, 1.0, 50)]
    y = np.r_[np.zeros(100, int), np.tile([1, 0], 50), np.ones(50, int)]
    for method in ("centered_isotonic", "isotonic"):
        cal = fit_calibrator(y, raw, method)
        assert cal(0.0) == pytest.approx(1 / 102, abs=1e-5)
        assert cal(1.0) == pytest.approx(51 / 52, abs=1e-5)


def test_tie_breaking_keeps_ranking_metrics_on_held_out_data():
    """Calibration then ranks exactly as the raw score does: ROC-AUC on new data is the raw one, not worse."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(5)
    raw_val, raw_test = rng.random(300), rng.random(5000)
    y_val = (rng.random(300) < raw_val**3).astype(int)
    y_test = (rng.random(5000) < raw_test**3).astype(int)
    flat = fit_calibrator(y_val, raw_val, "centered_isotonic")
    untied = Calibrator("isotonic", x=flat.x, y=flat.y)  # the same levels without the tie-breaker
    assert roc_auc_score(y_test, flat(raw_test)) == pytest.approx(roc_auc_score(y_test, raw_test), abs=1e-12)
    assert roc_auc_score(y_test, flat(raw_test)) >= roc_auc_score(y_test, untied(raw_test)) - 1e-12
    assert average_precision_score(y_test, flat(raw_test)) >= average_precision_score(y_test, untied(raw_test)) - 1e-3


def test_bundles_saved_before_bounds_load_unchanged():
    old = Calibrator.from_dict({"method": "isotonic", "x": [0.0, 1.0], "y": [0.0, 1.0]})
    assert old.floor == 0 and old.tie == 0
    np.testing.assert_array_equal(old([0.0, 0.5, 1.0]), [0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="floor"):
        Calibrator.from_dict({"method": "identity", "floor": 0.7})


def test_centered_isotonic_has_no_jumps_where_classic_isotonic_does():
    """A score moved by 1e-4 (bf16, another CPU) must not move the probability by a whole step."""
    rng = np.random.default_rng(3)
    raw = np.sort(rng.random(2000))
    y = (rng.random(2000) < raw).astype(int)
    grid = np.linspace(0, 1, 20_001)
    classic = fit_calibrator(y, raw, "isotonic")
    centered = fit_calibrator(y, raw, "centered_isotonic")
    assert np.abs(classic(grid + 1e-4) - classic(grid)).max() > 0.05  # staircase edges: steep
    assert np.abs(centered(grid + 1e-4) - centered(grid)).max() < 0.005
    # same calibration quality on the data it was fitted on
    brier = {name: np.mean((cal(raw) - y) ** 2) for name, cal in (("classic", classic), ("centered", centered))}
    assert brier["centered"] < brier["classic"] + 0.005


def test_calibration_single_class_is_identity():
    cal = fit_calibrator([0, 0, 0], [0.2, 0.5, 0.7])
    assert cal.method == "identity"
    np.testing.assert_allclose(cal([0.2, 0.5]), [0.2, 0.5], atol=1e-6)
    assert 0 < cal(0.0) < cal(1.0) < 1


def test_scaler_standardizes_and_fills_missing():
    train = pd.DataFrame({"a": [1.0, 2.0, 3.0, np.nan], "b": [5.0, 5.0, 5.0, 5.0]})
    scaler = NumericScaler.fit(train, ["a", "b"])
    z = scaler.transform(pd.DataFrame({"a": [2.0, np.nan, 1e9], "b": [5.0, 7.0, 5.0]}))
    assert z.dtype == np.float32
    assert z[0, 0] == 0 and z[1, 0] == 0 and z[2, 0] == scaler.clip
    assert z[1, 1] == pytest.approx(2.0)  # zero std falls back to 1
    again = NumericScaler.from_dict(["a", "b"], scaler.to_dict())
    np.testing.assert_array_equal(again.transform(train), scaler.transform(train))
    with pytest.raises(KeyError, match="lacks numeric"):
        scaler.transform(pd.DataFrame({"a": [1.0]}))


def test_length_grouped_sampler_covers_rows_and_groups_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 128, 1000)
    sampler = LengthGroupedBatchSampler(lengths, 16, seed=1, mega_batch_mult=10)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 0.25 * (lengths.max() - lengths.min())
    sampler.set_epoch(2)
    assert list(sampler) != batches  # new order each epoch
    sampler.set_epoch(0)
    assert list(sampler) == batches  # deterministic per (seed, epoch)


def test_length_grouped_sampler_shards_for_ddp():
    lengths = list(range(1, 101))
    shards = [list(LengthGroupedBatchSampler(lengths, 8, seed=3, num_replicas=3, rank=r)) for r in range(3)]
    assert len({len(s) for s in shards}) == 1
    seen = {i for s in shards for b in s for i in b}
    assert seen == set(range(100))


def test_sorted_batches_and_padding():
    batches = sorted_batches([3, 9, 1, 5], 2)
    assert [b.tolist() for b in batches] == [[1, 3], [0, 2]]
    ids, mask = pad_batch([np.array([7, 8, 9]), np.array([4])], pad_id=0)
    assert ids.tolist() == [[7, 8, 9], [4, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
