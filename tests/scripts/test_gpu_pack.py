"""scripts.gpu_pack: what a lent GPU machine gets is a loadable fp32 model, labelled rows without ids, and fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from pipelines.contract import ExitCode
from pipelines.models import load_bundle
from scripts import gpu_pack
from tests.helpers.bundles import tiny_transformer_bundle
from tests.pipelines.registry.conftest import FEATURES, write_training_sets


@pytest.fixture
def tiny_config(config, tiny_encoder_dir):
    return config.with_overrides({"model": {"encoder": tiny_encoder_dir, "max_length": 48, "head_hidden": [16]}})


@pytest.fixture
def bundle_and_manifest(tmp_path, tiny_config):
    manifest = write_training_sets(tmp_path / "sets", rows={"train": 60, "validation": 40, "test": 300})
    frame = pd.read_parquet(tmp_path / "sets" / "train.parquet")
    bundle = tiny_transformer_bundle(tmp_path / "bundle", tiny_config.model, frame, FEATURES, onnx=False)
    return bundle, manifest


def test_pack_writes_an_fp16_bundle_that_scores_like_the_original_and_rows_without_ids(
    tmp_path, config, bundle_and_manifest
):
    bundle, manifest = bundle_and_manifest
    out = tmp_path / ".gpu"
    held = gpu_pack.pack(config, out, bundle=bundle, manifest=manifest, rows=120, python=None)
    assert held["rows"] == 120 and held["wheels"] == []
    assert sorted(p.name for p in out.iterdir()) == ["bundle", "frame.parquet"]
    assert "F16" in (out / "bundle" / "encoder" / "model.safetensors").read_bytes()[:4096].decode("latin-1")
    rows = pd.read_parquet(out / "frame.parquet")
    assert list(rows.columns) == [*FEATURES, "text_view", "churned"]  # no customer_id leaves the machine
    half = load_bundle(out / "bundle", device="cpu")
    assert {p.dtype for p in half.model.parameters()} == {torch.float32}
    dp = np.abs(half.predict_proba(rows) - load_bundle(bundle, device="cpu").predict_proba(rows)).max()
    assert 0 < dp < 1e-3  # rounded once to fp16: the same model, not a bit-identical one


def test_pack_refuses_what_would_not_fit_and_leaves_nothing(tmp_path, config, bundle_and_manifest, monkeypatch):
    bundle, manifest = bundle_and_manifest
    monkeypatch.setattr(gpu_pack, "CARRY_LIMIT_MIB", 1)
    with pytest.raises(gpu_pack.PackError, match="over the device limit of 1 MiB") as err:
        gpu_pack.pack(config, tmp_path / ".gpu", bundle=bundle, manifest=manifest, rows=120, python=None)
    assert err.value.exit_code == ExitCode.CONFIG
    assert list(tmp_path.glob("*gpu*")) == []  # neither the output nor its staging folder


def test_pack_needs_the_bundles_columns_and_a_manifest(tmp_path, config, bundle_and_manifest):
    bundle, manifest = bundle_and_manifest
    with pytest.raises(gpu_pack.PackError, match="--bundle needs --manifest"):
        gpu_pack.pack(config, tmp_path / ".gpu", bundle=bundle, manifest=None, rows=120, python=None)
    with pytest.raises(gpu_pack.PackError, match="lacks the bundle's column.*f_missing"):
        gpu_pack.write_frame(manifest, [*FEATURES, "f_missing"], 50, tmp_path / "frame.parquet")


def test_the_wheels_are_pinned_by_constraints():
    pins = gpu_pack.pinned_versions()
    assert pins["pydantic_core"] and pins["lightgbm"] == "4.7.0"
    assert all(name in pins for name in gpu_pack.GPU_WHEELS)
