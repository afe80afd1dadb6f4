"""ONNX Runtime scoring backend: the whole churn model (encoder + pooling + head) as one ONNX graph.

Why: on CPUs without native bf16 (AVX2-only cores) PyTorch can only score in fp32; ONNX Runtime runs
the same network with fused attention / GELU / LayerNorm kernels and, for ``onnx-int8``, int8 matrix
multiplies with per-channel weight scales, several times faster. The graphs are plain protobuf files
(no pickles): the fp32 graph is written into the bundle's ``onnx/`` directory when the bundle is saved;
a variant the bundle lacks (``onnx-int8``, or any graph of a bundle saved before this backend existed)
is exported on first use into a temporary directory (logged), never into the bundle. Whether a variant is accurate enough is decided per bundle at scoring time
by :class:`pipelines.models.bundle.TransformerPredictor`'s fp32 check, never assumed.

Variants (``scoring.precision``):

``onnx``       fp32 graph after ONNX Runtime's transformer fusions; matches PyTorch to ~1e-6.
``onnx-int8``  dynamic int8 (activations quantized per tensor at run time, weights per output
               channel) for the attention and FFN up-projections; the FFN down-projections, whose
               post-GELU inputs carry the activation outliers that per-tensor scales handle badly,
               and the head stay fp32. Opt-in: on MiniLM it moved calibrated scores by ~0.08, and
               every single layer group alone by more than 0.01 (per-tensor activation scales
               cannot follow BERT's outlier channels), so the fp32 check rejects it there.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

ONNX_DIR = "onnx"
ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}
ONNX_PRECISIONS = tuple(ONNX_FILES)
OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask", "numeric")


class OnnxUnavailableError(RuntimeError):
    """ONNX Runtime (or onnx) is not importable, or this bundle cannot be exported / loaded."""


def onnxruntime_version() -> str | None:
    """The installed onnxruntime version, or None when it cannot be imported."""
    try:
        import onnxruntime
    except Exception:  # ImportError, or a broken native library
        return None
    return str(onnxruntime.__version__)


class _Scorer(nn.Module):
    """ChurnModel.forward with three positional tensors, the signature the ONNX graph gets."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids, attention_mask, numeric)


def _encoder_shape(encoder: nn.Module) -> tuple[int, int]:
    cfg = encoder.config
    return int(cfg.num_attention_heads), int(cfg.hidden_size)


def export_onnx(model: nn.Module, out_dir: Path, *, n_numeric: int, variants=("onnx",)) -> dict:
    """Write the fused fp32 graph (and the int8 one if asked) of ``model`` into ``out_dir``; returns metadata.

    The model is copied first: the exporter traces it in train/eval switches and must not touch the
    caller's module. Attention is exported in its eager form, the pattern ONNX Runtime fuses into one
    ``Attention`` kernel.
    """
    try:
        import onnx  # noqa: F401
        import onnxruntime
        from onnxruntime.transformers.optimizer import optimize_model
    except Exception as exc:
        raise OnnxUnavailableError(f"onnx / onnxruntime not importable: {exc}") from exc
    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scorer = _Scorer(copy.deepcopy(model).float().cpu().eval()).eval()
    encoder = scorer.model.encoder
    if hasattr(encoder, "set_attn_implementation"):
        encoder.set_attn_implementation("eager")
    num_heads, hidden = _encoder_shape(encoder)
    ids = torch.full((2, 8), 5, dtype=torch.int64)
    mask = torch.ones((2, 8), dtype=torch.int64)
    mask[1, 6:] = 0
    numeric = torch.zeros((2, n_numeric), dtype=torch.float32)
    raw = out_dir / ".raw.onnx"
    batch, seq = "batch", "sequence"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about python control flow on shapes
        torch.onnx.export(
            scorer,
            (ids, mask, numeric),
            str(raw),
            input_names=list(INPUT_NAMES),
            output_names=["logits"],
            dynamic_axes={
                "input_ids": {0: batch, 1: seq},
                "attention_mask": {0: batch, 1: seq},
                "numeric": {0: batch},
                "logits": {0: batch},
            },
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter: no onnxscript dependency, and its graph is what the fuser knows
        )
    with _quiet_onnx_logs():
        optimized = optimize_model(str(raw), model_type="bert", num_heads=num_heads, hidden_size=hidden, opt_level=0)
    fusions = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
    fp32_path = out_dir / ONNX_FILES["onnx"]
    optimized.save_model_to_file(str(fp32_path))
    raw.unlink()
    files = {"onnx": ONNX_FILES["onnx"]}
    meta = {
        "dir": ONNX_DIR,
        "files": files,
        "opset": OPSET,
        "exporter": "torch.onnx (TorchScript, dynamo=False)",
        "fusions": fusions,
        "onnxruntime": onnxruntime.__version__,
    }
    if "onnx-int8" in variants:
        from pipelines.models.device import cpu_has_int8_dot_product

        reduce_range = not cpu_has_int8_dot_product()
        meta["int8_fp32_nodes"] = len(
            quantize_int8(fp32_path, out_dir / ONNX_FILES["onnx-int8"], reduce_range=reduce_range)
        )
        meta["int8_weight_bits"] = 7 if reduce_range else 8
        files["onnx-int8"] = ONNX_FILES["onnx-int8"]
    logger.info("exported ONNX graphs %s in %.1f s (fusions %s)", sorted(files), time.perf_counter() - start, fusions)
    return meta


def _down_projections(model_path: Path) -> list[str]:
    """MatMul nodes whose constant weight narrows the width (K > N): the FFN output projections."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model_path)).graph
    shapes = {init.name: numpy_helper.to_array(init).shape for init in graph.initializer}
    out = []
    for node in graph.node:
        if node.op_type == "MatMul":
            weight = shapes.get(node.input[1])
            if weight is not None and len(weight) == 2 and weight[0] > weight[1]:
                out.append(node.name)
    return out


def quantize_int8(src: Path, dst: Path, *, reduce_range: bool | None = None) -> list[str]:
    """Dynamic int8 with per-channel weights, FFN down-projections and the head left fp32; returns those nodes.

    ``reduce_range`` (7-bit weights) defaults to this CPU's need: on x86 without VNNI the u8s8 kernel's int16
    pair sums saturate with full 8-bit weights (:func:`pipelines.models.device.cpu_has_int8_dot_product`). The
    graph is built on the machine that scores with it (never stored in a bundle by default), so that is the
    CPU that matters.
    """
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from pipelines.models.device import cpu_has_int8_dot_product

    if reduce_range is None:
        reduce_range = not cpu_has_int8_dot_product()
    excluded = _down_projections(src)
    head = [n for n in _node_names(src) if "/head/" in n]
    with warnings.catch_warnings(), _quiet_onnx_logs():
        warnings.simplefilter("ignore")
        quantize_dynamic(
            str(src),
            str(dst),
            per_channel=True,
            reduce_range=reduce_range,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=excluded + head,
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )
    logger.info(
        "int8 graph: %s-bit weights (%s), %d nodes left fp32",
        7 if reduce_range else 8,
        "no VNNI on this CPU: int16 saturation" if reduce_range else "full range",
        len(excluded + head),
    )
    return excluded + head


@contextlib.contextmanager
def _quiet_onnx_logs():
    """ONNX Runtime's optimizer / quantizer log every fusion step at INFO (and a hint at WARNING) to the root logger."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _node_names(model_path: Path) -> list[str]:
    import onnx

    return [node.name for node in onnx.load(str(model_path)).graph.node]


class OnnxSession:
    """One ONNX Runtime CPU session for a variant's graph; ``logits(ids, mask, numeric)`` like ChurnModel."""

    def __init__(self, path: Path, *, num_threads: int | None = None):
        try:
            import onnxruntime as ort
        except Exception as exc:
            raise OnnxUnavailableError(f"onnxruntime not importable: {exc}") from exc
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = int(num_threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise OnnxUnavailableError(f"onnxruntime cannot load {path}: {exc}") from exc
        self.path = Path(path)

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray, numeric: np.ndarray) -> np.ndarray:
        feeds = {
            "input_ids": np.ascontiguousarray(input_ids, dtype=np.int64),
            "attention_mask": np.ascontiguousarray(attention_mask, dtype=np.int64),
            "numeric": np.ascontiguousarray(numeric, dtype=np.float32),
        }
        return self.session.run(None, feeds)[0]


def _stored_int8_saturates(meta: dict, precision: str) -> bool:
    """A stored int8 graph with full 8-bit weights (or of unknown width) on an x86 CPU without VNNI: rebuild it."""
    from pipelines.models.device import cpu_has_int8_dot_product

    if precision != "onnx-int8" or cpu_has_int8_dot_product():
        return False
    if (meta.get("onnx") or {}).get("int8_weight_bits") == 7:
        return False
    logger.info("the bundle's int8 graph has 8-bit weights, which saturate without VNNI: rebuilding it with 7-bit")
    return True


def onnx_session(
    root: Path, meta: dict, precision: str, model_factory, *, n_numeric: int, num_threads: int | None = None
) -> OnnxSession:
    """The session for ``precision`` from the bundle's ``onnx/`` dir, or a fresh export when it has none.

    ``model_factory()`` builds the PyTorch model; it is called only when the bundle lacks the graph.
    """
    if precision not in ONNX_FILES:
        raise ValueError(f"unknown ONNX variant {precision!r}; expected one of {ONNX_PRECISIONS}")
    if onnxruntime_version() is None:
        raise OnnxUnavailableError("onnxruntime is not installed (pip install onnxruntime)")
    listed = (meta.get("onnx") or {}).get("files", {})
    graph_dir = None if root is None else Path(root) / (meta.get("onnx") or {}).get("dir", ONNX_DIR)
    for name in {precision, "onnx"} & set(listed):
        if not (graph_dir / listed[name]).is_file():
            raise OnnxUnavailableError(f"bundle {root} lists {ONNX_DIR}/{listed[name]} but the file is missing")
    if precision in listed and not _stored_int8_saturates(meta, precision):
        return OnnxSession(graph_dir / listed[precision], num_threads=num_threads)
    tmp = Path(tempfile.mkdtemp(prefix="churn-onnx-"))
    try:
        start = time.perf_counter()
        if precision == "onnx-int8" and "onnx" in listed:  # quantize the bundle's own fp32 graph
            quantize_int8(graph_dir / listed["onnx"], tmp / ONNX_FILES[precision])
        else:
            export_onnx(model_factory(), tmp, n_numeric=n_numeric, variants=(precision,))
        logger.info(
            "bundle %s has no %s graph: built it for this process in %.1f s (not stored in the bundle)",
            root,
            precision,
            time.perf_counter() - start,
        )
        return OnnxSession(tmp / ONNX_FILES[precision], num_threads=num_threads)
    except OnnxUnavailableError:
        raise
    except Exception as exc:
        raise OnnxUnavailableError(f"cannot build the {precision} graph: {type(exc).__name__}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
