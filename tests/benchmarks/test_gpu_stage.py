"""The gpu stage: every figure from the platform's own predictor and training loop (run here on CPU, tiny model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.common import Context, StageSkipped
from benchmarks.stages import gpu
from benchmarks.targets import TARGETS, judge
from pipelines.models import load_bundle
from tests.helpers.bundles import tiny_transformer_bundle
from tests.helpers.synthetic import FEATURES, make_customers


@pytest.fixture
def tiny_config(config, tiny_encoder_dir):
    return config.with_overrides({"model": {"encoder": tiny_encoder_dir, "max_length": 48, "head_hidden": [16]}})


@pytest.fixture
def ctx(tmp_path, tiny_config):
    frame = make_customers(150, seed=4)
    bundle = tiny_transformer_bundle(tmp_path / "bundle", tiny_config.model, frame, FEATURES, onnx=False)
    frame.drop(columns=["customer_id"]).to_parquet(tmp_path / "frame.parquet")
    context = Context(customers=200, scale="200", out_dir=tmp_path / "out", work_dir=tmp_path / "work")
    context.bundle, context.score_max_length, context.repeat = str(bundle), 32, 1
    context.shared.update(gpu_frame=str(tmp_path / "frame.parquet"), gpu_rows=64)
    context.config_overrides["training"] = {"batch_size": 8, "device": "cpu", "num_threads": 1}
    return context


def test_every_figure_comes_from_the_bundle_and_the_training_loop(ctx):
    result = gpu.measure(ctx, "cpu")
    expected = {
        "finetune_samples_per_s",
        "finetune_tokens_per_s",
        "score_bf16_max_abs_dp",
        "score_fp32_roc_auc",
        "score_bf16_roc_auc",
        "tokenize_customers_per_s",
        "score_fp32_customers_per_s",
        "score_bf16_customers_per_s",
        "encoder_bf16_customers_per_s",
    }
    assert expected <= set(result.metrics)
    assert all(np.isfinite(m.value) and m.value >= 0 for m in result.metrics.values())
    # the check compares bf16 with fp32 of the same bundle: its own figure, recomputed here
    frame = __import__("pandas").read_parquet(ctx.shared["gpu_frame"])
    p = {x: load_bundle(ctx.bundle, device="cpu", precision=x, batch_size=1024) for x in ("fp32", "bf16")}
    for pred in p.values():
        pred.max_length = 32
    dp = np.abs(p["bf16"].predict_proba(frame) - p["fp32"].predict_proba(frame)).max()
    assert result.metrics["score_bf16_max_abs_dp"].value == pytest.approx(dp, abs=1e-6)
    assert result.metrics["score_bf16_max_abs_dp"].value > 0  # bf16 really ran
    assert ctx.config_overrides.get("model") is None  # the encoder override does not leak into later stages


def test_a_hybrid_bundle_is_measured_through_its_transformer(tmp_path, monkeypatch):
    import pipelines.models

    kinds = {tmp_path: "hybrid", tmp_path / "transformer": "transformer"}
    monkeypatch.setattr(pipelines.models, "read_bundle_meta", lambda path: {"kind": kinds[Path(path)]})
    assert gpu.transformer_bundle_dir(tmp_path) == tmp_path / "transformer"
    kinds[tmp_path] = "baseline"
    with pytest.raises(StageSkipped, match="baseline bundle"):
        gpu.transformer_bundle_dir(tmp_path)


def test_without_cuda_or_inputs_the_stage_says_why(ctx, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(StageSkipped, match="no CUDA GPU"):
        gpu.run(ctx)
    ctx.shared["gpu_frame"] = str(Path(ctx.work_dir) / "absent.parquet")
    with pytest.raises(StageSkipped, match="--gpu-frame"):
        gpu.measure(ctx, "cpu")


def test_gpu_targets_read_the_gpu_stage_and_its_bf16_check():
    target = next(t for t in TARGETS if t.key == "gpu_scoring")
    stage = {
        "status": "ok",
        "metrics": {"score_bf16_customers_per_s": {"value": 40_000.0}, "score_bf16_max_abs_dp": {"value": 0.004}},
    }
    assert judge(target, {"stages": {"gpu": stage}}, has_gpu=True)["status"] == "met"
    stage["metrics"]["score_bf16_max_abs_dp"]["value"] = 0.02  # fast but moves scores: missed
    assert judge(target, {"stages": {"gpu": stage}}, has_gpu=True)["status"] == "missed"
    finetune = next(t for t in TARGETS if t.key == "gpu_finetune")
    gpu_stage = {"status": "ok", "metrics": {"finetune_samples_per_s": {"value": 4_000.0}}}
    assert judge(finetune, {"stages": {"gpu": gpu_stage}}, has_gpu=True)["status"] == "missed"
