"""Two more int8 graphs of a bundle's ONNX model, measured by the score stage and not offered for scoring.

Why here and not in ``pipelines.models.onnx_backend``: neither keeps calibrated scores within 0.01 of fp32
and beats the fp32 graph's speed on the CPUs measured (see benchmarks/results), so the platform does not
ship them; the score stage keeps measuring them so a new CPU or ONNX Runtime can change that verdict.

- :func:`static_int8`: ONNX Runtime static quantization (QDQ, per-channel symmetric int8 weights,
  symmetric int8 activations with MinMax ranges calibrated on real text views), FFN down-projections
  and the head kept fp32. The fused ``Attention`` kernels have no QDQ form, so their Q/K/V
  projections stay fp32.
- :func:`block_int8`: every weight MatMul (FFN, attention output) as ``MatMulNBits`` with 8-bit
  symmetric weights in blocks of 32 along K and ``accuracy_level`` 4: the activations are quantized
  to int8 per row and per block of 32 channels at run time, fine enough to follow BERT's outlier
  channels that defeat one scale per tensor.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np


class _Feeds:
    """ONNX Runtime's CalibrationDataReader protocol over prepared input dicts."""

    def __init__(self, feeds: list[dict]):
        self.feeds = feeds
        self._it = iter(feeds)

    def get_next(self):
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self.feeds)


def calibration_feeds(pred, frame, batch_size: int = 32) -> list[dict]:
    """Length-sorted, per-batch padded graph inputs for ``frame`` (what scoring feeds the graph)."""
    from pipelines.models.batching import pad_batch, sorted_batches, tokenize_texts

    ids = tokenize_texts(pred.tokenizer, frame["text_view"].tolist(), pred.max_length)
    numeric = pred.scaler.transform(frame)
    feeds = []
    for idx in sorted_batches([len(x) for x in ids], batch_size):
        input_ids, mask = pad_batch([ids[i] for i in idx], pred.pad_id)
        feeds.append(
            {
                "input_ids": input_ids.numpy().astype(np.int64),
                "attention_mask": mask.numpy().astype(np.int64),
                "numeric": numeric[idx].astype(np.float32),
            }
        )
    return feeds


def _kept_fp32(src: Path) -> list[str]:
    from pipelines.models.onnx_backend import _down_projections, _node_names

    return _down_projections(src) + [n for n in _node_names(src) if "/head/" in n]


def static_int8(src: Path, dst: Path, feeds: list[dict]) -> list[str]:
    """Static QDQ int8 of ``src`` calibrated on ``feeds``; returns the MatMul nodes kept fp32."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from pipelines.models.device import cpu_has_int8_dot_product
    from pipelines.models.onnx_backend import _quiet_onnx_logs

    excluded = _kept_fp32(src)
    with warnings.catch_warnings(), _quiet_onnx_logs():
        warnings.simplefilter("ignore")
        quantize_static(
            str(src),
            str(dst),
            _Feeds(feeds),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=not cpu_has_int8_dot_product(),  # 7-bit weights where u8s8 int16 sums saturate (no VNNI)
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=excluded,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
        )
    return excluded


def block_int8(src: Path, dst: Path, *, block: int = 32, accuracy_level: int = 4) -> int:
    """Rewrite each constant-weight MatMul (not the head) as MatMulNBits 8-bit; returns how many."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    nodes, converted = [], 0
    for node in graph.node:
        init = weights.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if init is None or "/head/" in node.name or len(init.dims) != 2 or init.dims[0] % block:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(init).astype(np.float32)  # [K, N]
        k, n = w.shape
        blocks = w.T.reshape(n, k // block, block)
        scale = np.abs(blocks).max(axis=2) / 127.0
        scale[scale == 0] = 1.0
        # unsigned storage with the op's implied zero point 128 (no zero_points input): symmetric int8
        q = (np.clip(np.rint(blocks / scale[..., None]), -127, 127) + 128).astype(np.uint8)
        q_init = numpy_helper.from_array(q, f"{init.name}_q8")
        s_init = numpy_helper.from_array(scale.reshape(-1).astype(np.float32), f"{init.name}_q8_scale")
        graph.initializer.extend([q_init, s_init])
        nodes.append(
            helper.make_node(
                "MatMulNBits",
                [node.input[0], q_init.name, s_init.name],
                list(node.output),
                name=f"{node.name}_q8",
                domain="com.microsoft",
                K=k,
                N=n,
                bits=8,
                block_size=block,
                accuracy_level=accuracy_level,
            )
        )
        converted += 1
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if not any(op.domain == "com.microsoft" for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(dst))
    return converted
