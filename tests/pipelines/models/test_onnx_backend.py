"""ONNX Runtime backend: export into the bundle, equivalence to PyTorch, the fp32 check, fallback to PyTorch."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from pipelines.models import (
    BundleError,
    load_bundle,
)
from pipelines.models import device as device_mod
from tests.helpers.bundles import tiny_transformer_bundle
from tests.helpers.synthetic import FEATURES, make_customers

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def frame():
    return make_customers(120, seed=5)


def _save(tmp_path, tiny_config, frame, **options):
    return tiny_transformer_bundle(tmp_path / "bundle", tiny_config.model, frame, FEATURES, **options)


@pytest.fixture
def bundle(tmp_path, tiny_config, frame):
    return _save(tmp_path, tiny_config, frame)


def test_bundle_carries_onnx_graphs_that_score_like_pytorch(bundle, frame):
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["onnx"]["files"] == {"onnx": "model.onnx"}  # int8: opt-in, exported on first use
    assert sorted(p.name for p in (bundle / "onnx").iterdir()) == ["model.onnx"]
    assert meta["onnx"]["fusions"].get("Attention") == 2  # ORT's fused attention, one per layer
    expected = load_bundle(bundle, device="cpu").predict_proba(frame)

    fp32 = load_bundle(bundle, device="cpu", precision="onnx")
    assert fp32.precision == "onnx" and fp32._onnx is not None and fp32.onnx_fallback is None
    np.testing.assert_allclose(fp32.predict_proba(frame), expected, atol=1e-5)
    part = frame.head(40)  # ragged lengths in one batch vs one row per batch: padding must not leak in
    np.testing.assert_allclose(
        load_bundle(bundle, precision="onnx", batch_size=1).predict_raw(part),
        load_bundle(bundle, precision="onnx", batch_size=64).predict_raw(part),
        atol=1e-5,
    )

    int8 = load_bundle(bundle, device="cpu", precision="onnx-int8")
    assert int8.quantized and int8._onnx.path.name == "model.int8.onnx"
    dp = np.abs(int8.predict_proba(frame) - expected).max()
    assert 0 < dp < 0.01  # really quantized, and close
    assert sorted(p.name for p in (bundle / "onnx").iterdir()) == ["model.onnx"]  # bundle left as saved


def test_onnx_check_passes_keeps_onnx_and_failure_scores_fp32(bundle, frame):
    expected = load_bundle(bundle, device="cpu").predict_proba(frame)
    guarded = load_bundle(bundle, device="cpu", precision="onnx", check_rows=32, tolerance=0.01)
    got = guarded.predict_proba(frame)
    assert guarded.precision_check["passed"] and guarded.precision == "onnx" and guarded._onnx is not None
    np.testing.assert_allclose(got, expected, atol=1e-5)

    strict = load_bundle(bundle, device="cpu", precision="onnx-int8", check_rows=16, tolerance=1e-12)
    got = strict.predict_proba(frame)
    assert strict.precision_check["passed"] is False and strict.precision_check["precision"] == "onnx-int8"
    assert strict.precision == "fp32" and strict._onnx is None
    np.testing.assert_allclose(got, expected, atol=1e-6)  # every customer rescored by PyTorch fp32


def test_bundle_without_graphs_is_exported_on_first_use(tmp_path, tiny_config, frame):
    path = _save(tmp_path, tiny_config, frame, onnx=False)
    assert not (path / "onnx").exists() and "onnx" not in json.loads((path / "bundle.json").read_text())
    expected = load_bundle(path, device="cpu").predict_proba(frame)
    pred = load_bundle(path, device="cpu", precision="onnx")
    assert pred.precision == "onnx" and pred._onnx is not None
    np.testing.assert_allclose(pred.predict_proba(frame), expected, atol=1e-5)
    assert not (path / "onnx").exists()  # the bundle directory is not modified at scoring time


def test_without_onnxruntime_bundles_save_and_scoring_falls_back_to_pytorch(tmp_path, tiny_config, frame, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    monkeypatch.setattr(device_mod, "onnxruntime_installed", lambda: False)
    path = _save(tmp_path, tiny_config, frame)
    assert not (path / "onnx").exists()
    expected = load_bundle(path, device="cpu").predict_proba(frame)
    pred = load_bundle(path, device="cpu", precision="onnx-int8", check_rows=8)
    assert pred.precision == "fp32" and pred._onnx is None and "onnxruntime" in pred.onnx_fallback
    np.testing.assert_allclose(pred.predict_proba(frame), expected, atol=1e-6)
    monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda: False)
    assert load_bundle(path, device="cpu", precision="auto").precision == "fp32"


def test_auto_on_a_native_bf16_cpu_falls_back_to_the_onnx_graph_when_bf16_fails_its_check(bundle, frame, monkeypatch):
    monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda: True)
    expected = load_bundle(bundle, device="cpu").predict_proba(frame)
    pred = load_bundle(bundle, device="cpu", precision="auto", check_rows=16, tolerance=1e-4)
    assert pred.precision == "bf16"
    got = pred.predict_proba(frame)
    assert pred.precision_check["passed"] is False and pred.precision_check["precision"] == "bf16"
    assert pred.precision_check["fallback"]["passed"] and pred.precision == "onnx" and pred._onnx is not None
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_the_graph_is_covered_by_the_bundle_integrity_listing(bundle):
    meta = json.loads((bundle / "bundle.json").read_text())
    assert "onnx/model.onnx" in meta["files"]
    graph = bundle / "onnx" / "model.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="onnx/model.onnx"):
        load_bundle(bundle, device="cpu", precision="onnx")


def test_auto_picks_the_onnx_graph_on_cpu_when_onnxruntime_is_installed(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(device_mod, "onnxruntime_installed", lambda: True)
    monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda: False)
    assert device_mod.resolve_inference_precision(cpu, "auto") == "onnx"
    assert device_mod.resolve_inference_precision(cpu, "onnx") == "onnx"
    monkeypatch.setattr(device_mod, "onnxruntime_installed", lambda: False)
    monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda: True)
    assert device_mod.resolve_inference_precision(cpu, "auto") == "bf16"
    monkeypatch.undo()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # bf16 capped away: emulated, not native
    assert device_mod.cpu_has_native_bf16() is False


def _int8_weights(path) -> list[np.ndarray]:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    return [numpy_helper.to_array(i) for i in graph.initializer if i.data_type == onnx.TensorProto.INT8 and i.dims]


@pytest.mark.parametrize("vnni", [False, True])
def test_int8_weights_are_7_bit_on_cpus_without_vnni(bundle, frame, monkeypatch, tmp_path, vnni):
    from pipelines.models.onnx_backend import quantize_int8

    monkeypatch.setattr(device_mod, "cpu_has_int8_dot_product", lambda: vnni)
    quantize_int8(bundle / "onnx" / "model.onnx", tmp_path / "int8.onnx")
    weights = _int8_weights(tmp_path / "int8.onnx")
    assert weights
    largest = max(int(np.abs(w.astype(np.int32)).max()) for w in weights)
    assert largest == (127 if vnni else 64)  # symmetric per-channel: full 8-bit range, or 7-bit against saturation


def test_a_stored_8_bit_int8_graph_is_rebuilt_on_a_cpu_without_vnni(bundle, monkeypatch):
    from pipelines.models.onnx_backend import ONNX_FILES, quantize_int8

    meta = json.loads((bundle / "bundle.json").read_text())
    stored = bundle / "onnx" / ONNX_FILES["onnx-int8"]
    quantize_int8(bundle / "onnx" / "model.onnx", stored, reduce_range=False)
    onnx_meta = dict(meta["onnx"], files={**meta["onnx"]["files"], "onnx-int8": ONNX_FILES["onnx-int8"]})
    from pipelines.models.onnx_backend import onnx_session

    monkeypatch.setattr(device_mod, "cpu_has_int8_dot_product", lambda: False)
    session = onnx_session(bundle, {"onnx": onnx_meta}, "onnx-int8", None, n_numeric=len(FEATURES))
    assert session.path.name == stored.name and session.path != stored  # rebuilt (7-bit) in a temporary directory
    monkeypatch.setattr(device_mod, "cpu_has_int8_dot_product", lambda: True)
    assert onnx_session(bundle, {"onnx": onnx_meta}, "onnx-int8", None, n_numeric=len(FEATURES)).path == stored
