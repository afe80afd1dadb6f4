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
    # isotonic steps: {0.1} -> 0, {0.2, 0.3} -> 0.5 (pooled violator), {0.4} -> 1
    cal = fit_calibrator([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], "centered_isotonic")
    np.testing.assert_allclose(cal.x, [0.1, 0.25, 0.4])
    np.testing.assert_allclose(cal.y, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(cal([0.0, 0.175, 0.25, 0.3, 0.9]), [0.0, 0.25, 0.5, 2 / 3, 1.0])


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
    np.testing.assert_allclose(cal([0.2, 0.5]), [0.2, 0.5])


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
