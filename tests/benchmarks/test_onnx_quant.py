"""The score stage's block-wise int8 graph computes the same MatMul as the fp32 one (weight layout, scales)."""

from __future__ import annotations

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


def _matmul_graph(path, w: np.ndarray) -> None:
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="/encoder/ffn/MatMul")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", w.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", w.shape[1]])],
        [numpy_helper.from_array(w, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _run(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_block_int8_matches_the_fp32_matmul(tmp_path):
    from benchmarks.onnx_quant import block_int8

    rng = np.random.default_rng(0)
    w = (rng.normal(size=(64, 24)) * np.linspace(0.1, 3.0, 24)).astype(np.float32)  # columns of unequal scale
    x = rng.normal(size=(5, 64)).astype(np.float32)
    x[:, 7] *= 40  # an outlier channel, as in BERT's activations
    _matmul_graph(tmp_path / "fp32.onnx", w)
    assert block_int8(tmp_path / "fp32.onnx", tmp_path / "q8.onnx") == 1
    exact, quantized = _run(tmp_path / "fp32.onnx", x), _run(tmp_path / "q8.onnx", x)
    assert [n.op_type for n in onnx.load(str(tmp_path / "q8.onnx")).graph.node] == ["MatMulNBits"]
    rel = np.linalg.norm(quantized - exact) / np.linalg.norm(exact)
    assert rel < 0.02  # a transposed or mis-scaled weight would be off by ~100%
