"""Model bundles: a directory with ``bundle.json`` plus safetensors / LightGBM text weights, never pickles.

Why no pickles: a bundle travels through MLflow artifacts and is loaded by the daily scoring job;
unpickling executes arbitrary code, safetensors and LightGBM text files cannot.

Layout (transformer)::

    bundle.json            kind, feature_names, numeric mean/std, max_length, pooling, head sizes,
                           calibrator (JSON arrays), threshold, library versions, extra (metrics...)
    head.safetensors       MLP head weights
    encoder/               model.safetensors + config.json + tokenizer files (LoRA already merged)
    onnx/                  model.onnx: the same network for ONNX Runtime (fused fp32 graph), when it is
                           installed at save time (see pipelines.models.onnx_backend)

Layout (baseline)::

    bundle.json
    model.txt              LightGBM booster in its text format

Layout (hybrid): see :mod:`pipelines.models.hybrid` (a transformer bundle inside, plus the stacker booster).

Integrity: ``bundle.json`` lists every other file of the bundle (``files``: relative path -> sha256 and
size), written last when the bundle is saved. Loading checks that list before any weight file is parsed:
a file that is missing, truncated, bit-flipped or not listed at all (whatever its suffix) is one
``BundleError`` naming the file, so a damaged download or a smuggled pickle never reaches a parser (a
truncated LightGBM text model used to crash the process with a segfault).

Why one file over 400 lines: saving, verifying and loading a bundle must agree on one file layout and one
checksum listing; keeping them together keeps them in step.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import platform
import shutil
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from pipelines.contract import TEXT_COLUMN, ExitCode
from pipelines.models.batching import RowProgress, pad_batch, sorted_batches, tokenize_texts
from pipelines.models.calibration import Calibrator
from pipelines.models.device import ONNX_PRECISIONS
from pipelines.models.network import ChurnHead, ChurnModel, NumericScaler, merge_lora, text_dim_of

logger = logging.getLogger(__name__)

BUNDLE_FILE = "bundle.json"
HEAD_FILE = "head.safetensors"
ENCODER_DIR = "encoder"
BASELINE_FILE = "model.txt"
FORMAT_VERSION = 2  # 2: bundle.json lists every file with its sha256 and size
MANIFEST_KEY = "files"
BUNDLE_KINDS = ("transformer", "baseline", "hybrid")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
# Customers per forward pass when none is configured: small batches stay in a CPU core's cache, a GPU
# needs large ones to be busy.
DEFAULT_BATCH_SIZE = {"cpu": 32, "cuda": 512}


class BundleError(RuntimeError):
    """A directory is not a loadable, pickle-free, intact model bundle (the message names the file)."""

    exit_code = ExitCode.SCORING


@runtime_checkable
class ChurnPredictor(Protocol):
    kind: str
    feature_names: list[str]
    threshold: float

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray: ...

    def predict_raw(self, frame: pd.DataFrame) -> np.ndarray: ...


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("churn-platform", "torch", "transformers", "peft", "safetensors", "lightgbm", "scikit-learn", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


class TransformerPredictor:
    """Calibrated churn probabilities from the encoder model, fast on CPU and GPU.

    Speed: batched fast tokenization, rows sorted by token length and padded per batch, inference
    mode, and a reduced precision where the hardware has it (``precision``, see
    :func:`pipelines.models.device.resolve_inference_precision`): bf16 autocast on CUDA; on CPU the
    ONNX Runtime graph (``onnx``, ``onnx-int8``; the bundle's ``onnx/`` files or a fresh export), the
    encoder's weights in bf16 (AMX / AVX512-BF16 matrix units), or dynamic int8 when asked for. An
    ONNX variant that cannot be loaded (onnxruntime missing, no graph) falls back to PyTorch, logged.

    Guard: with ``check_rows > 0`` and a precision other than fp32, the first call also scores its
    first ``check_rows`` customers in fp32; if any calibrated probability moves by more than
    ``tolerance``, the predictor logs a warning and scores everything in fp32 from then on. So a
    model whose calibration is too steep for bf16 costs speed, never accuracy.
    """

    kind = "transformer"

    def __init__(
        self,
        model: ChurnModel,
        tokenizer,
        scaler: NumericScaler,
        calibrator: Calibrator,
        *,
        max_length: int,
        threshold: float = 0.5,
        metadata: dict | None = None,
        device: str | torch.device | None = None,
        precision: str = "fp32",
        batch_size: int | None = None,
        check_rows: int = 0,
        tolerance: float = 0.01,
        bundle_root: Path | None = None,
    ):
        from pipelines.models.device import resolve_device, resolve_inference_precision

        self.device = resolve_device(device or "auto")
        self.model = model.eval().to(self.device)
        self.tokenizer = tokenizer
        self.scaler = scaler
        self.calibrator = calibrator
        self.max_length = max_length
        self.threshold = float(threshold)
        self.metadata = metadata or {}
        self.batch_size = batch_size or DEFAULT_BATCH_SIZE.get(self.device.type, DEFAULT_BATCH_SIZE["cpu"])
        self.feature_names = list(scaler.feature_names)
        self.precision = resolve_inference_precision(self.device, precision)
        self.tolerance = float(tolerance)
        self.check_rows = int(check_rows)
        self.precision_check: dict | None = None  # filled by the first call when the guard runs
        self.onnx_fallback: str | None = None  # why an ONNX variant was asked for but PyTorch scores
        self._onnx = None
        self._bundle_root = bundle_root
        # auto on a native-bf16 CPU: bf16 first; if it fails the fp32 check, the exact ONNX graph before fp32.
        self._onnx_fallback = precision == "auto" and self.precision == "bf16" and self.device.type == "cpu"
        if self.precision in ONNX_PRECISIONS:
            self._onnx = self._open_onnx(bundle_root, requested=precision)
        self._fp32_encoder: nn.Module | None = None
        if self.precision != "fp32" and self.check_rows > 0:
            self._fp32_encoder = self.model.encoder
        if self.device.type == "cpu" and self.precision == "bf16":
            self.model.encoder = _copy_if(self._fp32_encoder, self.model.encoder).to(torch.bfloat16)
        elif self.device.type == "cpu" and self.precision == "int8":
            self.model.encoder = quantize_encoder(_copy_if(self._fp32_encoder, self.model.encoder))
        pad = tokenizer.pad_token_id
        self.pad_id = 0 if pad is None else int(pad)

    def _open_onnx(self, bundle_root: Path | None, *, requested: str):
        """The ONNX Runtime session for ``self.precision``, or None (and a PyTorch precision) if it cannot run."""
        from pipelines.models.device import torch_cpu_precision
        from pipelines.models.onnx_backend import OnnxUnavailableError, onnx_session

        try:
            return onnx_session(
                bundle_root,
                self.metadata,
                self.precision,
                lambda: self.model,
                n_numeric=self.model.head.n_numeric,
                num_threads=torch.get_num_threads(),
            )
        except OnnxUnavailableError as exc:
            fallback = torch_cpu_precision() if requested == "auto" else "fp32"
            self.onnx_fallback = str(exc)
            logger.warning("%s scoring unavailable (%s): scoring with PyTorch in %s", self.precision, exc, fallback)
            self.precision = fallback
            return None

    @property
    def quantized(self) -> bool:
        return self.precision in ("int8", "onnx-int8")

    def _autocast(self):
        if self.device.type == "cuda" and self.precision == "bf16":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _logits(self, ids: list[np.ndarray], numeric: np.ndarray) -> np.ndarray:
        out = np.empty(len(ids), dtype=np.float64)
        progress = RowProgress(f"encoder pass ({self.precision})", len(ids))
        if self._onnx is not None:
            for idx in sorted_batches([len(x) for x in ids], self.batch_size):
                input_ids, mask = pad_batch([ids[i] for i in idx], self.pad_id)
                out[idx] = self._onnx.logits(input_ids.numpy(), mask.numpy(), numeric[idx])
                progress.step(len(idx))
            return out
        with torch.inference_mode(), self._autocast():
            for idx in sorted_batches([len(x) for x in ids], self.batch_size):
                input_ids, mask = pad_batch([ids[i] for i in idx], self.pad_id)
                unpadded = bool(mask.all())  # length-sorted: most batches of long histories
                logits = self.model(
                    input_ids.to(self.device),
                    None if unpadded else mask.to(self.device),
                    torch.from_numpy(numeric[idx]).to(self.device),
                )
                out[idx] = logits.float().cpu().numpy()
                progress.step(len(idx))
        return out

    def predict_logits(self, frame: pd.DataFrame) -> np.ndarray:
        if TEXT_COLUMN not in frame.columns:
            raise KeyError(f"frame lacks the {TEXT_COLUMN!r} column")
        if len(frame) == 0:
            return np.empty(0, dtype=np.float64)
        ids = tokenize_texts(self.tokenizer, frame[TEXT_COLUMN].tolist(), self.max_length)
        numeric = self.scaler.transform(frame)
        logits = self._logits(ids, numeric)
        if self._fp32_encoder is not None:
            logits = self._check_precision(ids, numeric, logits)
        return logits

    def _check_precision(self, ids: list[np.ndarray], numeric: np.ndarray, fast_logits: np.ndarray) -> np.ndarray:
        """Rescore the first ``check_rows`` customers in fp32; keep ``fast_logits`` if close, else redo all in fp32."""
        n = min(self.check_rows, len(ids))
        fast_encoder, fast_precision, fast_onnx = self.model.encoder, self.precision, self._onnx
        self.model.encoder, self.precision, self._onnx = self._fp32_encoder, "fp32", None
        self._fp32_encoder = None
        exact = self.calibrator(_sigmoid(self._logits(ids[:n], numeric[:n])))
        max_dp = float(np.max(np.abs(self.calibrator(_sigmoid(fast_logits[:n])) - exact)))
        passed = max_dp <= self.tolerance
        self.precision_check = {
            "precision": fast_precision,
            "rows": n,
            "max_abs_dp": max_dp,
            "tolerance": self.tolerance,
            "passed": passed,
        }
        if passed:
            self.model.encoder, self.precision, self._onnx = fast_encoder, fast_precision, fast_onnx
            logger.info(
                "%s scoring checked against fp32 on %d customers: max |dp| %.4f <= %.3f; scoring in %s",
                fast_precision,
                n,
                max_dp,
                self.tolerance,
                fast_precision,
            )
            return fast_logits
        logger.warning(
            "%s scoring moves calibrated probabilities by up to %.4f (> %.3f) on the first %d "
            "customers: scoring in fp32 instead (slower, exact). A steep calibrator amplifies "
            "small numeric differences; see training.calibration.",
            fast_precision,
            max_dp,
            self.tolerance,
            n,
        )
        if self._onnx_fallback:
            self._try_onnx_fallback(ids[:n], numeric[:n], exact)
        return self._logits(ids, numeric)

    def _try_onnx_fallback(self, ids: list[np.ndarray], numeric: np.ndarray, exact: np.ndarray) -> bool:
        """After bf16 failed its check: score with the ONNX fp32 graph instead if it loads and passes."""
        from pipelines.models.device import onnxruntime_installed

        self._onnx_fallback = False
        if not onnxruntime_installed():
            return False
        self.precision = "onnx"
        self._onnx = self._open_onnx(self._bundle_root, requested="onnx")  # fp32 again if it cannot load
        if self._onnx is None:
            return False
        max_dp = float(np.max(np.abs(self.calibrator(_sigmoid(self._logits(ids, numeric))) - exact)))
        self.precision_check["fallback"] = {
            "precision": "onnx",
            "max_abs_dp": max_dp,
            "passed": max_dp <= self.tolerance,
        }
        if max_dp <= self.tolerance:
            logger.info("onnx scoring checked against fp32 instead: max |dp| %.2g; scoring with ONNX Runtime", max_dp)
            return True
        self._onnx, self.precision = None, "fp32"
        return False

    def predict_raw(self, frame: pd.DataFrame) -> np.ndarray:
        """Uncalibrated sigmoid scores (class-weighted training inflates them)."""
        return _sigmoid(self.predict_logits(frame))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.calibrator(self.predict_raw(frame))


class BaselinePredictor:
    """Calibrated probabilities from the LightGBM baseline on the numeric features."""

    kind = "baseline"

    def __init__(
        self,
        booster,
        feature_names: list[str],
        calibrator: Calibrator,
        *,
        threshold: float = 0.5,
        metadata: dict | None = None,
        num_threads: int = 2,
    ):
        self.booster = booster
        self.feature_names = list(feature_names)
        self.calibrator = calibrator
        self.threshold = float(threshold)
        self.metadata = metadata or {}
        self.num_threads = num_threads

    def predict_raw(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.feature_names if c not in frame.columns]
        if missing:
            raise KeyError(f"frame lacks numeric feature columns: {missing}")
        x = frame[self.feature_names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if len(x) == 0:
            return np.empty(0)
        return np.asarray(self.booster.predict(x, num_threads=self.num_threads), dtype=np.float64)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.calibrator(self.predict_raw(frame))


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def _copy_if(keep: nn.Module | None, encoder: nn.Module) -> nn.Module:
    """A copy of ``encoder`` when the original must be kept (for the fp32 check), else itself."""
    return copy.deepcopy(encoder) if keep is not None else encoder


def quantize_encoder(encoder: nn.Module) -> nn.Module:
    """Dynamic int8 (per-channel weights) for the encoder's linear layers, except down-projections.

    Why skip down-projections (FFN intermediate -> hidden, ``in_features > out_features``): their inputs
    are post-GELU activations with outliers that per-tensor activation quantization handles badly;
    keeping them fp32 roughly halves the score error (max |dp| ~0.006 vs ~0.012 on MiniLM) for a
    small part of the speed-up. The head stays fp32: it is tiny.
    """
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    spec = {
        name: per_channel_dynamic_qconfig
        for name, module in encoder.named_modules()
        if isinstance(module, nn.Linear) and module.in_features <= module.out_features
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization deprecation notice
        return quantize_dynamic(encoder, spec, dtype=torch.qint8)


# ---------------------------------------------------------------------------------------------- saving


def _write_atomically(out_dir: Path, fill) -> Path:
    """Build the bundle in a sibling temp dir, then swap it in, so a crash never leaves half a bundle."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        fill(tmp)
        seal_bundle(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _bundle_files(root: Path) -> list[str]:
    """Every entry under ``root`` except bundle.json, as relative POSIX paths; links and specials refused."""
    found = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise BundleError(f"bundle {root}: {rel} is a link or special file; bundles hold plain files only")
        if path.is_file() and rel != BUNDLE_FILE:
            found.append(rel)
    return found


def seal_bundle(root: Path) -> dict:
    """Record every file of the bundle (sha256, size) in its bundle.json; called last when a bundle is saved."""
    root = Path(root)
    meta = json.loads((root / BUNDLE_FILE).read_text())
    files = {}
    for rel in _bundle_files(root):
        files[rel] = {"sha256": _sha256(root / rel), "size": (root / rel).stat().st_size}
    meta["format_version"] = FORMAT_VERSION
    meta[MANIFEST_KEY] = files
    _write_json(root / BUNDLE_FILE, meta)
    return meta


def verify_bundle(root: Path, meta: dict) -> None:
    """Every file listed with the right size and sha256, and nothing else; before anything is parsed."""
    listed = meta.get(MANIFEST_KEY)
    if not isinstance(listed, dict) or not listed:
        raise BundleError(
            f"{root / BUNDLE_FILE}: no file list with checksums (format_version {meta.get('format_version')!r}, "
            f"written before bundles were checksummed, or edited); re-save the bundle (retrain) to load it"
        )
    present = _bundle_files(root)
    unlisted = [rel for rel in present if rel not in listed]
    if unlisted:
        raise BundleError(
            f"bundle {root}: file(s) not listed in bundle.json: {', '.join(unlisted)}; refusing to load "
            "(only the files the bundle was saved with are trusted)"
        )
    for rel, entry in listed.items():
        path = root / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts or not isinstance(entry, dict):
            raise BundleError(f"{root / BUNDLE_FILE}: bad file entry {rel!r}")
        if not path.is_file():
            raise BundleError(f"bundle {root}: {rel} is missing (listed in bundle.json)")
        size = path.stat().st_size
        if size != entry.get("size"):
            what = "empty" if size == 0 else "truncated" if size < (entry.get("size") or 0) else "larger than saved"
            raise BundleError(f"bundle {root}: {rel} is {what}: {size} bytes, bundle.json says {entry.get('size')}")
        if _sha256(path) != entry.get("sha256"):
            raise BundleError(f"bundle {root}: {rel} is corrupted: its sha256 does not match bundle.json")


def load_lightgbm_text(root: Path, meta: dict):
    """The bundle's LightGBM booster (``model_file``), checked complete before LightGBM parses it."""
    import lightgbm as lgb

    model_file = root / meta.get("model_file", BASELINE_FILE)
    if not model_file.is_file():
        raise BundleError(f"{meta.get('kind')} bundle {root} has no LightGBM text model {model_file.name}")
    _check_lightgbm_text(model_file)
    try:
        return lgb.Booster(model_file=str(model_file))
    except lgb.basic.LightGBMError as exc:
        raise BundleError(f"{model_file}: LightGBM cannot read it: {exc}") from exc


def _check_lightgbm_text(path: Path) -> None:
    """A LightGBM text model must be complete before LightGBM parses it (its parser can crash on a cut file)."""
    data = path.read_bytes()
    if not data.startswith((b"tree\n", b"tree\r\n")):
        raise BundleError(f"{path}: not a LightGBM text model (it does not start with 'tree')")
    if b"\nend of trees" not in data:
        raise BundleError(f"{path}: the LightGBM text model is incomplete (no 'end of trees'): truncated?")
    n_trees = data.count(b"\nTree=")
    sizes = next((line for line in data.split(b"\n", 64) if line.startswith(b"tree_sizes=")), None)
    if sizes is not None and len(sizes.split(b"=", 1)[1].split()) != n_trees:
        raise BundleError(
            f"{path}: the LightGBM text model has {n_trees} trees but its header lists a different number"
        )


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def save_transformer_bundle(
    out_dir,
    *,
    model: ChurnModel,
    tokenizer,
    scaler: NumericScaler,
    calibrator: Calibrator,
    threshold: float,
    max_length: int,
    encoder_source: str = "",
    fine_tune: str = "full",
    text_style: str = "verbose",
    extra: dict | None = None,
    onnx: bool = True,
) -> Path:
    """Write a transformer bundle; LoRA adapters are merged into ``model`` (in place) first.

    ``onnx``: also write the ONNX Runtime fp32 graph (``onnx/``) when onnxruntime is installed, so
    scoring with ``onnx`` / ``auto`` never exports at run time; a failed export is logged and the bundle is saved without them.
    """
    merge_lora(model)
    head: ChurnHead = model.head
    encoder = model.encoder
    meta = {
        "format_version": FORMAT_VERSION,
        "kind": "transformer",
        "feature_names": list(scaler.feature_names),
        "numeric": scaler.to_dict(),
        "text": {
            "column": TEXT_COLUMN,
            "max_length": int(max_length),
            "pooling": model.pooling,
            "style": text_style,  # dataset.text_style of the training text views: scoring builds the same
        },
        "head": {
            "text_dim": head.text_dim,
            "n_numeric": head.n_numeric,
            "hidden": head.hidden,
            "dropout": head.dropout,
            "file": HEAD_FILE,
        },
        "encoder": {
            "dir": ENCODER_DIR,
            "source": encoder_source,
            "fine_tune": fine_tune,
            "architecture": type(encoder).__name__,
        },
        "calibrator": calibrator.to_dict(),
        "threshold": float(threshold),
        "versions": library_versions(),
        "extra": extra or {},
    }

    def fill(tmp: Path) -> None:
        enc_dir = tmp / ENCODER_DIR
        encoder.save_pretrained(enc_dir)
        tokenizer.save_pretrained(enc_dir)
        if not list(enc_dir.glob("*.safetensors")):
            raise BundleError(f"encoder save produced no safetensors file in {enc_dir}")
        state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
        save_file(state, str(tmp / HEAD_FILE), metadata={"format": "pt"})
        if onnx:
            _export_onnx_into(tmp, model, meta)
        _write_json(tmp / BUNDLE_FILE, meta)

    path = _write_atomically(Path(out_dir), fill)
    logger.info("saved transformer bundle to %s", path)
    return path


def bundle_text_style(predictor) -> str | None:
    """The text-view style (``dataset.text_style``) a predictor was trained on; None for a model that reads no text.

    A hybrid answers for its transformer. Bundles written before the style was recorded were all ``verbose``.
    """
    inner = getattr(predictor, "transformer", predictor)
    text = (getattr(inner, "metadata", None) or {}).get("text")
    return text.get("style", "verbose") if isinstance(text, dict) else None


def _export_onnx_into(tmp: Path, model: ChurnModel, meta: dict) -> None:
    from pipelines.models.device import onnxruntime_installed
    from pipelines.models.onnx_backend import ONNX_DIR, export_onnx

    if not onnxruntime_installed():
        logger.info("onnxruntime not installed: bundle saved without ONNX graphs (scoring uses PyTorch)")
        return
    try:
        meta["onnx"] = export_onnx(model, tmp / ONNX_DIR, n_numeric=model.head.n_numeric)
    except Exception as exc:  # never lose a trained model to an exporter problem
        shutil.rmtree(tmp / ONNX_DIR, ignore_errors=True)
        logger.warning("ONNX export failed (%s: %s): bundle saved without ONNX graphs", type(exc).__name__, exc)


def save_baseline_bundle(
    out_dir, *, booster, feature_names: list[str], calibrator: Calibrator, threshold: float, extra: dict | None = None
) -> Path:
    """Write a LightGBM baseline bundle (booster text file + bundle.json)."""
    meta = {
        "format_version": FORMAT_VERSION,
        "kind": "baseline",
        "feature_names": list(feature_names),
        "model_file": BASELINE_FILE,
        "best_iteration": int(booster.best_iteration or booster.current_iteration()),
        "calibrator": calibrator.to_dict(),
        "threshold": float(threshold),
        "versions": library_versions(),
        "extra": extra or {},
    }

    def fill(tmp: Path) -> None:
        booster.save_model(str(tmp / BASELINE_FILE), num_iteration=meta["best_iteration"])
        _write_json(tmp / BUNDLE_FILE, meta)

    path = _write_atomically(Path(out_dir), fill)
    logger.info("saved baseline bundle to %s", path)
    return path


# --------------------------------------------------------------------------------------------- loading


def _check_no_pickles(root: Path) -> None:
    pickles = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise BundleError(
            f"refusing to load {root}: it holds pickle-format files {pickles}; "
            "bundles must use safetensors (transformer) or a LightGBM text model (baseline)"
        )


def read_bundle_meta(path) -> dict:
    root = Path(path)
    if not root.is_dir():
        raise BundleError(f"model bundle {root} does not exist or is not a directory")
    _check_no_pickles(root)
    meta_path = root / BUNDLE_FILE
    if not meta_path.is_file():
        has_weights = any(root.rglob("*.safetensors")) or (root / BASELINE_FILE).is_file()
        why = "no bundle.json" if has_weights else "no bundle.json and no safetensors weights"
        raise BundleError(f"{root} is not a model bundle: {why}")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{meta_path} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("kind") not in BUNDLE_KINDS:
        raise BundleError(f"{meta_path}: unknown bundle kind {meta.get('kind') if isinstance(meta, dict) else meta!r}")
    verify_bundle(root, meta)
    return meta


def load_bundle(
    path,
    device: str | None = None,
    precision: str = "fp32",
    batch_size: int | None = None,
    num_threads: int = 2,
    check_rows: int = 0,
    tolerance: float = 0.01,
) -> ChurnPredictor:
    """Load a bundle directory as a predictor; refuses anything without safetensors / LightGBM text weights.

    ``precision``/``check_rows``/``tolerance``: see :class:`TransformerPredictor` (the baseline ignores
    them).
    """
    root = Path(path)
    meta = read_bundle_meta(root)
    calibrator = Calibrator.from_dict(meta["calibrator"])
    feature_names = list(meta["feature_names"])
    if meta["kind"] == "baseline":
        booster = load_lightgbm_text(root, meta)
        return BaselinePredictor(
            booster, feature_names, calibrator, threshold=meta["threshold"], metadata=meta, num_threads=num_threads
        )
    options = dict(
        device=device, precision=precision, batch_size=batch_size, check_rows=check_rows, tolerance=tolerance
    )
    if meta["kind"] == "hybrid":
        from pipelines.models.hybrid import load_hybrid

        return load_hybrid(root, meta, calibrator, num_threads=num_threads, **options)
    return _load_transformer(root, meta, calibrator, feature_names, **options)


def _load_transformer(
    root: Path, meta: dict, calibrator: Calibrator, feature_names: list[str], **predictor_options
) -> TransformerPredictor:
    from transformers import AutoModel

    from pipelines.models.network import load_tokenizer

    head_path = root / meta["head"].get("file", HEAD_FILE)
    enc_dir = root / meta["encoder"].get("dir", ENCODER_DIR)
    if not head_path.is_file():
        raise BundleError(f"transformer bundle {root} has no safetensors head weights ({head_path.name})")
    if not enc_dir.is_dir() or not list(enc_dir.glob("*.safetensors")):
        raise BundleError(f"transformer bundle {root} has no safetensors encoder weights in {enc_dir}")
    try:
        # fp32 whatever the file stores (see network.load_encoder): the precision check compares against fp32
        encoder = AutoModel.from_pretrained(
            str(enc_dir), use_safetensors=True, local_files_only=True, dtype=torch.float32
        )
    except Exception as exc:  # SafetensorError, OSError, JSON errors: a damaged encoder, whichever parser saw it
        raise BundleError(f"cannot load encoder of bundle {root} ({enc_dir.name}/): {exc}") from exc
    h = meta["head"]
    if text_dim_of(encoder) != h["text_dim"]:
        raise BundleError(f"bundle {root}: encoder width {text_dim_of(encoder)} != head text_dim {h['text_dim']}")
    head = ChurnHead(h["text_dim"], h["n_numeric"], h["hidden"], h["dropout"])
    try:
        head.load_state_dict(load_file(str(head_path)), strict=True)
    except Exception as exc:  # SafetensorError on a damaged file, RuntimeError on wrong shapes
        raise BundleError(f"{head_path}: cannot load the head weights: {exc}") from exc
    model = ChurnModel(encoder, head, pooling=meta["text"]["pooling"])
    scaler = NumericScaler.from_dict(feature_names, meta["numeric"])
    return TransformerPredictor(
        model,
        load_tokenizer(str(enc_dir)),
        scaler,
        calibrator,
        max_length=meta["text"]["max_length"],
        threshold=meta["threshold"],
        metadata=meta,
        bundle_root=root,
        **predictor_options,
    )
