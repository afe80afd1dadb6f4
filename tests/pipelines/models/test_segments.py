"""Segment model: fitted k-means on behaviour (+ PCA of embeddings), named, stored as arrays, stable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.models.segments import SegmentModel, SegmentModelError, fit_segments, segment_profile

FEATURES = ["revenue_365d", "orders_365d", "days_since_last_order", "tenure_days"]


def _customers(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Two kinds: loyal big spenders (recent, frequent) and lapsing one-time buyers."""
    rng = np.random.default_rng(seed)
    loyal = rng.random(n) < 0.5
    return pd.DataFrame(
        {
            "revenue_365d": np.where(loyal, rng.normal(900, 80, n), rng.normal(40, 10, n)).clip(0),
            "orders_365d": np.where(loyal, rng.poisson(14, n), 1).astype(float),
            "days_since_last_order": np.where(loyal, rng.uniform(1, 20, n), rng.uniform(150, 300, n)),
            "tenure_days": rng.uniform(200, 900, n),
            "loyal": loyal,
        }
    )


def test_segments_separate_kinds_and_are_named_from_their_centroids():
    frame = _customers()
    model = fit_segments(frame, FEATURES, n_segments=2, seed=1)
    seg = model.predict(frame)
    # each segment is one kind of customer
    assert pd.crosstab(seg, frame["loyal"]).gt(0).sum(axis=1).tolist() == [1, 1]
    loyal_name = model.names[int(seg[frame["loyal"].to_numpy()][0])]
    other_name = model.names[int(seg[~frame["loyal"].to_numpy()][0])]
    assert loyal_name != other_name
    assert any(w in loyal_name for w in ("high value", "frequent buyers", "recent buyers"))
    assert any(w in other_name for w in ("low value", "one-time buyers", "lapsing"))
    profile = segment_profile(model, seg, frame, frame["loyal"].astype(int).to_numpy())
    assert profile["customers"].sum() == len(frame) and set(profile["churn_rate"]) == {0.0, 1.0}


def test_storage_is_arrays_and_json_and_round_trips(tmp_path):
    frame = _customers()
    emb = np.random.default_rng(2).normal(size=(len(frame), 16))
    model = fit_segments(frame, FEATURES, embeddings=emb, n_segments=4, pca_components=3, seed=0)
    assert model.uses_embedding and model.pca_components.shape == (3, 16)
    path = model.save(tmp_path / "seg")
    assert sorted(p.name for p in path.iterdir()) == ["segments.json", "segments.safetensors"]
    loaded = SegmentModel.load(path)
    np.testing.assert_array_equal(loaded.predict(frame, emb), model.predict(frame, emb))
    assert loaded.names == model.names
    with pytest.raises(SegmentModelError, match="embeddings"):
        loaded.predict(frame)
    (path / "segments.json").write_text((path / "segments.json").read_text().replace('"names": [', '"names": ["x", '))
    with pytest.raises(SegmentModelError, match="names"):
        SegmentModel.load(path)
    with pytest.raises(SegmentModelError, match="not a segment model"):
        SegmentModel.load(tmp_path)


def test_same_data_same_segments_and_daily_drift_does_not_flip_customers():
    frame = _customers(seed=3)
    model = fit_segments(frame, FEATURES, n_segments=5, seed=0)
    first = model.predict(frame)
    assert (model.predict(frame) == first).all()  # deterministic
    # the next day with no new data: every recency is one day older
    next_day = frame.assign(
        days_since_last_order=frame["days_since_last_order"] + 1, tenure_days=frame["tenure_days"] + 1
    )
    kept = model.predict(next_day, previous=first)
    assert (kept == first).mean() == 1.0
    # a customer who really changed moves: a lapsing one-time buyer turned loyal
    changed = frame.iloc[[int(np.flatnonzero(~frame["loyal"].to_numpy())[0])]].copy()
    loyal_like = frame[frame["loyal"]].iloc[[0]]
    moved = model.predict(loyal_like.assign(), previous=model.predict(changed))
    assert moved[0] == model.predict(loyal_like)[0]
