"""The hybrid bundle: round trip, integrity of the inner transformer, the blend it computes, attributions."""

from __future__ import annotations

import json

import lightgbm as lgb
import numpy as np
import pytest
import torch

from pipelines.models import (
    BundleError,
    Calibrator,
    HybridPredictor,
    NumericScaler,
    TransformerPredictor,
    build_churn_model,
    load_bundle,
    save_hybrid_bundle,
    save_transformer_bundle,
)
from pipelines.models.explain import numeric_contributions
from pipelines.models.hybrid import StackerWeights
from pipelines.models.network import load_tokenizer
from tests.helpers.synthetic import FEATURES, make_customers


@pytest.fixture(scope="module")
def frame():
    return make_customers(160, seed=4)


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory, tiny_encoder_dir, frame):
    """(bundle path, in-memory predictor): a tiny transformer and a booster over [features, its logit]."""
    from pipelines.config import Config

    tmp_path = tmp_path_factory.mktemp("hybrid")
    tiny_config = Config().with_overrides(
        {"model": {"encoder": tiny_encoder_dir, "max_length": 48, "head_hidden": [16]}}
    )
    torch.manual_seed(0)
    model = build_churn_model(tiny_config.model, len(FEATURES))
    tokenizer = load_tokenizer(tiny_config.model.encoder)
    scaler = NumericScaler.fit(frame, FEATURES)
    calibrator = Calibrator("platt", a=1.0, b=0.0)
    max_length = tiny_config.model.max_length
    transformer = TransformerPredictor(model, tokenizer, scaler, calibrator, max_length=max_length, device="cpu")
    tr_dir = save_transformer_bundle(
        tmp_path / "transformer",
        model=model,
        tokenizer=tokenizer,
        scaler=scaler,
        calibrator=calibrator,
        threshold=0.5,
        max_length=max_length,
        onnx=False,
    )
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5, "seed": 1}
    x = frame[FEATURES].to_numpy(dtype=float)
    booster = lgb.train(params, lgb.Dataset(x, frame["churned"].to_numpy()), num_boost_round=20)
    weights = StackerWeights(intercept=-0.2, baseline_weight=0.6, transformer_weight=0.8)
    stacked_cal = Calibrator("platt", a=0.9, b=0.1)
    predictor = HybridPredictor(transformer, booster, FEATURES, weights, stacked_cal, threshold=0.3, num_threads=1)
    path = save_hybrid_bundle(
        tmp_path / "hybrid",
        transformer_dir=tr_dir,
        booster=booster,
        feature_names=FEATURES,
        weights=weights,
        calibrator=stacked_cal,
        threshold=0.3,
        extra={"stacker_rows": len(frame)},
    )
    return path, predictor


def test_hybrid_round_trip(hybrid, frame):
    path, predictor = hybrid
    meta = json.loads((path / "bundle.json").read_text())
    assert meta["kind"] == "hybrid" and meta["stacker"] == predictor.weights.to_dict()
    assert "transformer/bundle.json" in meta["files"] and "model.txt" in meta["files"]
    loaded = load_bundle(path, num_threads=1)
    assert loaded.kind == "hybrid" and loaded.feature_names == FEATURES and loaded.threshold == 0.3
    assert loaded.transformer.kind == "transformer"
    np.testing.assert_allclose(loaded.predict_proba(frame), predictor.predict_proba(frame), atol=1e-9)


def test_hybrid_is_the_weighted_blend_of_its_two_models(hybrid, frame):
    _, predictor = hybrid
    gbm = predictor.booster.predict(frame[FEATURES].to_numpy(dtype=float), raw_score=True)
    logit = predictor.transformer.predict_logits(frame)
    np.testing.assert_allclose(predictor.log_odds(frame), -0.2 + 0.6 * gbm + 0.8 * logit)
    # only the text view changes: the transformer side moves the score
    edited = frame.assign(text_view='[1d ago] support contact x3 | [2d ago] review 1/5 "never again"')
    assert not np.allclose(predictor.predict_proba(edited), predictor.predict_proba(frame))


def _copy(hybrid, tmp_path):
    import shutil

    return shutil.copytree(hybrid[0], tmp_path / "copy")


def test_hybrid_bundle_refuses_a_tampered_transformer(hybrid, tmp_path):
    path = _copy(hybrid, tmp_path)
    head = path / "transformer" / "head.safetensors"
    data = bytearray(head.read_bytes())
    data[-1] ^= 0xFF
    head.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="transformer/head.safetensors is corrupted"):
        load_bundle(path)


@pytest.mark.parametrize("stacker", [{}, {"intercept": 0, "baseline_weight": "x", "transformer_weight": 1}])
def test_hybrid_bundle_refuses_bad_stacker_weights(hybrid, tmp_path, stacker):
    from pipelines.models.bundle import seal_bundle

    path = _copy(hybrid, tmp_path)
    meta = json.loads((path / "bundle.json").read_text())
    meta["stacker"] = stacker
    (path / "bundle.json").write_text(json.dumps(meta))
    seal_bundle(path)
    with pytest.raises(BundleError, match="stacker weights"):
        load_bundle(path)


def test_hybrid_numeric_contributions_are_the_weighted_treeshap(hybrid, frame):
    _, predictor = hybrid
    attribution = numeric_contributions(predictor, frame)
    assert attribution.feature_names == FEATURES and attribution.contributions.shape == (len(frame), len(FEATURES))
    full = predictor.booster.predict(frame[FEATURES].to_numpy(dtype=float), pred_contrib=True)
    np.testing.assert_allclose(attribution.contributions, 0.6 * full[:, : len(FEATURES)])
