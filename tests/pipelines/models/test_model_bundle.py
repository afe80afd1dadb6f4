"""Bundles: round trips, pickle refusal, reduced precision (bf16, int8) and its fp32 check, padding invariance, LoRA merge."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from pipelines.models import (
    BundleError,
    Calibrator,
    ChurnPredictor,
    ModelSetupError,
    NumericScaler,
    TransformerPredictor,
    build_churn_model,
    fit_calibrator,
    load_bundle,
    resolve_encoder_path,
    save_baseline_bundle,
    save_transformer_bundle,
)
from pipelines.models.bundle import bundle_text_style
from pipelines.models.network import load_tokenizer, merge_lora
from tests.helpers.synthetic import FEATURES, make_customers


@pytest.fixture(scope="module")
def frame():
    return make_customers(120, seed=3)


def _transformer_bundle(tmp_path, tiny_config, frame, fine_tune="full", text_style="verbose"):
    cfg = tiny_config.with_overrides({"model": {"fine_tune": fine_tune}})
    torch.manual_seed(0)
    model = build_churn_model(cfg.model, len(FEATURES))
    tokenizer = load_tokenizer(cfg.model.encoder)
    scaler = NumericScaler.fit(frame, FEATURES)
    calibrator = Calibrator("platt", a=0.8, b=-0.1)
    in_memory = TransformerPredictor(
        model, tokenizer, scaler, calibrator, max_length=cfg.model.max_length, threshold=0.4, device="cpu"
    )
    expected = in_memory.predict_proba(frame)
    path = save_transformer_bundle(
        tmp_path / "bundle",
        model=model,
        tokenizer=tokenizer,
        scaler=scaler,
        calibrator=calibrator,
        threshold=0.4,
        max_length=cfg.model.max_length,
        encoder_source=cfg.model.encoder,
        fine_tune=fine_tune,
        text_style=text_style,
        extra={"note": "test"},
    )
    return path, expected


def test_transformer_round_trip(tmp_path, tiny_config, frame):
    path, expected = _transformer_bundle(tmp_path, tiny_config, frame)
    meta = json.loads((path / "bundle.json").read_text())
    assert meta["kind"] == "transformer" and meta["feature_names"] == FEATURES
    assert len(meta["numeric"]["mean"]) == len(FEATURES) and meta["text"]["max_length"] == 48
    assert meta["calibrator"] == {"method": "platt", "a": 0.8, "b": -0.1} and meta["threshold"] == 0.4
    assert "torch" in meta["versions"] and "transformers" in meta["versions"]
    assert (path / "head.safetensors").is_file() and list((path / "encoder").glob("*.safetensors"))
    assert not [p for p in path.rglob("*") if p.suffix in (".bin", ".pt", ".pkl")]

    predictor = load_bundle(path, device="cpu")
    assert isinstance(predictor, ChurnPredictor)
    assert predictor.kind == "transformer" and predictor.feature_names == FEATURES and predictor.threshold == 0.4
    got = predictor.predict_proba(frame)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert got.shape == (len(frame),) and ((got >= 0) & (got <= 1)).all()


def test_padding_and_batch_size_do_not_change_scores(tmp_path, tiny_config, frame):
    path, _ = _transformer_bundle(tmp_path, tiny_config, frame)
    part = frame.head(40)
    one = load_bundle(path, batch_size=1).predict_raw(part)
    many = load_bundle(path, batch_size=64).predict_raw(part)
    np.testing.assert_allclose(one, many, atol=1e-5)


@pytest.mark.parametrize("options", [{"precision": "int8"}])
def test_int8_quantized_scores_stay_close(tmp_path, tiny_config, frame, options):
    path, _ = _transformer_bundle(tmp_path, tiny_config, frame)
    fp32 = load_bundle(path).predict_raw(frame)
    q = load_bundle(path, device="cpu", **options)
    assert q.quantized and q.precision == "int8"
    assert np.abs(q.predict_raw(frame) - fp32).max() < 0.01


def test_bf16_cpu_scoring_passes_its_fp32_check_and_runs_in_bf16(tmp_path, tiny_config, frame):
    path, expected = _transformer_bundle(tmp_path, tiny_config, frame)
    fast = load_bundle(path, device="cpu", precision="bf16", check_rows=32, tolerance=0.01)
    got = fast.predict_proba(frame)
    assert fast.precision_check == {
        "precision": "bf16",
        "rows": 32,
        "max_abs_dp": pytest.approx(np.abs(got[:32] - expected[:32]).max(), abs=1e-9),
        "tolerance": 0.01,
        "passed": True,
    }
    assert fast.precision == "bf16" and next(fast.model.encoder.parameters()).dtype == torch.bfloat16
    assert 0 < np.abs(got - expected).max() < 0.01  # really computed in bf16, and close
    assert fast.predict_proba(frame.head(5)).shape == (5,)  # checked once, not on every call
    assert fast.precision_check["rows"] == 32


def test_reduced_precision_falls_back_to_fp32_when_its_check_fails(tmp_path, tiny_config, frame):
    path, expected = _transformer_bundle(tmp_path, tiny_config, frame)
    guarded = load_bundle(path, device="cpu", precision="bf16", check_rows=16, tolerance=1e-9)
    got = guarded.predict_proba(frame)
    assert guarded.precision_check["passed"] is False and guarded.precision_check["max_abs_dp"] > 1e-9
    assert guarded.precision == "fp32" and next(guarded.model.encoder.parameters()).dtype == torch.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)  # every customer scored in fp32


def test_inference_precision_resolution(monkeypatch):
    from pipelines.models import device as device_mod

    cpu = torch.device("cpu")
    monkeypatch.setattr(device_mod, "onnxruntime_installed", lambda: False)  # auto with ORT: test_onnx_backend
    monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda: True)
    assert device_mod.resolve_inference_precision(cpu, "auto") == "bf16"
    monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda: False)
    assert device_mod.resolve_inference_precision(cpu, "auto") == "fp32"
    assert device_mod.resolve_inference_precision(cpu, "bf16") == "bf16"  # explicit: honoured, with a warning
    assert device_mod.resolve_inference_precision(cpu, "int8") == "int8"
    with pytest.raises(ValueError, match="unknown precision"):
        device_mod.resolve_inference_precision(cpu, "fp8")


def test_baseline_round_trip(tmp_path, frame):
    import lightgbm as lgb

    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "deterministic": True, "seed": 1}
    booster = lgb.train(params, lgb.Dataset(frame[FEATURES].to_numpy(), frame["churned"].to_numpy()), 20)
    raw = booster.predict(frame[FEATURES].to_numpy())
    calibrator = fit_calibrator(frame["churned"], raw, "isotonic")
    path = save_baseline_bundle(
        tmp_path / "b", booster=booster, feature_names=FEATURES, calibrator=calibrator, threshold=0.3
    )
    assert sorted(p.name for p in path.iterdir()) == ["bundle.json", "model.txt"]
    predictor = load_bundle(path)
    assert predictor.kind == "baseline" and predictor.feature_names == FEATURES
    np.testing.assert_allclose(predictor.predict_raw(frame), raw, atol=1e-12)
    np.testing.assert_allclose(predictor.predict_proba(frame), calibrator(raw), atol=1e-12)
    assert bundle_text_style(predictor) is None  # LightGBM reads no text view


def test_load_refuses_directories_without_safetensors(tmp_path, tiny_config, frame):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BundleError, match="no safetensors") as err:
        load_bundle(empty)
    assert str(empty) in str(err.value)

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    torch.save({"w": torch.zeros(2)}, pickled / "pytorch_model.bin")
    with pytest.raises(BundleError, match="pickle") as err:
        load_bundle(pickled)
    assert str(pickled) in str(err.value)

    path, _ = _transformer_bundle(tmp_path, tiny_config, frame)
    no_head = tmp_path / "no_head"
    shutil.copytree(path, no_head)
    (no_head / "head.safetensors").unlink()
    with pytest.raises(BundleError, match="head.safetensors is missing"):
        load_bundle(no_head)

    bin_encoder = tmp_path / "bin_encoder"
    shutil.copytree(path, bin_encoder)
    (bin_encoder / "encoder" / "model.safetensors").rename(bin_encoder / "encoder" / "pytorch_model.bin")
    with pytest.raises(BundleError, match="pickle"):
        load_bundle(bin_encoder)

    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "missing")


def test_lora_trains_adapters_only_and_merges(tmp_path, tiny_config, frame):
    cfg = tiny_config.with_overrides({"model": {"fine_tune": "lora", "lora_rank": 4}})
    model = build_churn_model(cfg.model, len(FEATURES))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    with torch.no_grad():  # adapters start as a no-op (B = 0); make them matter
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    ids = torch.randint(1000, 2000, (3, 12))
    mask, numeric = torch.ones_like(ids), torch.randn(3, len(FEATURES))
    model.eval()
    before = model(ids, mask, numeric)
    merge_lora(model)
    assert type(model.encoder).__name__ == "BertModel"
    torch.testing.assert_close(model(ids, mask, numeric), before, atol=1e-4, rtol=1e-4)


def test_lora_unusable_encoder_gives_clear_error(tiny_config):
    cfg = tiny_config.with_overrides({"model": {"fine_tune": "lora", "lora_target_modules": ["q_lin"]}})
    with pytest.raises(ModelSetupError, match="lora_target_modules"):
        build_churn_model(cfg.model, 3)


def test_frozen_encoder_has_no_trainable_weights(tiny_config):
    model = build_churn_model(tiny_config.with_overrides({"model": {"fine_tune": "frozen"}}).model, 3)
    assert not any(p.requires_grad for p in model.encoder.parameters())
    model.train()
    assert not model.encoder.training and model.head.training


def test_resolve_encoder_path(tmp_path, packaged_encoder_path):
    assert resolve_encoder_path("packaged:all-MiniLM-L6-v2") == packaged_encoder_path
    assert resolve_encoder_path(str(tmp_path)) == str(tmp_path.resolve())
    assert resolve_encoder_path("bert-base-multilingual-cased") == "bert-base-multilingual-cased"


def test_bundle_records_the_text_style_it_was_trained_on(tmp_path, tiny_config, frame):
    path, _ = _transformer_bundle(tmp_path, tiny_config, frame, text_style="compact")
    assert json.loads((path / "bundle.json").read_text())["text"]["style"] == "compact"
    assert bundle_text_style(load_bundle(path, device="cpu")) == "compact"
    # a bundle written before the style was recorded: every such bundle was trained on the verbose view
    meta = json.loads((path / "bundle.json").read_text())
    del meta["text"]["style"]
    assert bundle_text_style(type("Old", (), {"metadata": meta})()) == "verbose"


def test_half_precision_checkpoints_train_and_score_with_fp32_weights(tmp_path, tiny_config, tiny_encoder_dir, frame):
    """transformers 5 loads a checkpoint in its stored dtype; an fp16 encoder must still fine-tune and score in fp32."""
    from transformers import AutoModel

    half_dir = tmp_path / "encoder-fp16"
    AutoModel.from_pretrained(tiny_encoder_dir).half().save_pretrained(half_dir)
    load_tokenizer(tiny_encoder_dir).save_pretrained(half_dir)
    cfg = tiny_config.with_overrides({"model": {"encoder": str(half_dir)}})
    torch.manual_seed(0)
    model = build_churn_model(cfg.model, len(FEATURES))
    assert {p.dtype for p in model.parameters()} == {torch.float32}

    model.encoder.half()  # a bundle whose encoder file stores fp16 weights (e.g. one shrunk for a transfer)
    path = save_transformer_bundle(
        tmp_path / "bundle",
        model=model,
        tokenizer=load_tokenizer(str(half_dir)),
        scaler=NumericScaler.fit(frame, FEATURES),
        calibrator=Calibrator("platt", a=0.8, b=-0.1),
        threshold=0.4,
        max_length=cfg.model.max_length,
        onnx=False,
    )
    assert "F16" in (path / "encoder" / "model.safetensors").read_bytes()[:4096].decode("latin-1")
    loaded = load_bundle(path, device="cpu")
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}
    model.encoder.float()
    expected = TransformerPredictor(
        model, load_tokenizer(str(half_dir)), loaded.scaler, loaded.calibrator, max_length=cfg.model.max_length
    ).predict_proba(frame)
    np.testing.assert_allclose(loaded.predict_proba(frame), expected, atol=1e-6)
