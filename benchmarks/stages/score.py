"""Stage score: scoring throughput, features in -> calibrated probabilities out, transformer bundle.

On the same customers, several ways of running one bundle (``pipelines.models.load_bundle``) at
``--score-max-length`` tokens (default 128):
(a) ``fixed_fp32``: every row padded to max_length, original order (the unoptimized baseline, driven
by the harness with the bundle's own model, scaler and calibrator);
(b) ``bucketed_fp32``: ``TransformerPredictor.predict_proba`` (rows sorted by token length, padded per
batch); (c) ``bucketed_bf16``: the same with the encoder in bf16 (only on CPUs with native bf16:
AMX / AVX512-BF16); (d) ``bucketed_int8``: dynamic int8 encoder Linear layers; (e) ``bucketed_onnx``:
the bundle's ONNX Runtime fp32 graph (fused attention / GELU / LayerNorm); (f) ``bucketed_onnx_int8``: its
dynamic int8 graph (per-channel weights, FFN down-projections fp32); (g) ``bucketed_onnx_int8_static``
and (h) ``bucketed_onnx_int8_block``: static QDQ int8 calibrated on the stage's other labelled customers'
text views, and 8-bit MatMulNBits with per-block activation quantization (``benchmarks.onnx_quant``,
measured only: not scoring options). ``*_vs_fixed_fp32`` is each
variant's speed over (a) in the same run (absolute figures drift with the load of shared cores).
``length_*``: ROC-AUC / PR-AUC and speed of the exact ``onnx`` variant at 64 and 96 tokens, to pick
the token budget by measurement.
``default_*`` repeats the variant that the default config (``scoring.precision: auto`` plus its fp32
check) picks on this machine: that is what the CPU-scoring target judges.
Reports customers/s, batch size, sequence length, pad share, max |dp| vs (a), and whether ROC-AUC /
PR-AUC on churn labels (and Spearman vs (a)) are unchanged to two decimals. Timing includes
tokenization, numeric scaling and calibration; not the feature query (stage features measures that).
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from benchmarks.bundles import FIT_ROWS, find_trained_bundle, labelled_frame, standin_transformer_bundle
from benchmarks.common import Context, StageResult, load1, require

logger = logging.getLogger("benchmarks.score")


def fixed_length_proba(pred, frame) -> np.ndarray:
    """The unoptimized path: pad every row to max_length, keep input order, fp32."""
    import torch

    texts = frame["text_view"].fillna("").astype(str).tolist()
    numeric = pred.scaler.transform(frame)
    out = np.empty(len(frame), dtype=np.float64)
    with torch.inference_mode():
        for start in range(0, len(texts), pred.batch_size):
            enc = pred.tokenizer(
                texts[start : start + pred.batch_size],
                padding="max_length",
                truncation=True,
                max_length=pred.max_length,
                return_tensors="pt",
                return_token_type_ids=False,
            )
            sl = slice(start, start + pred.batch_size)
            out[sl] = pred.model(enc["input_ids"], enc["attention_mask"], torch.from_numpy(numeric[sl])).float().numpy()
    return pred.calibrator(1.0 / (1.0 + np.exp(-out)))


def token_stats(pred, frame) -> dict[str, dict[str, float]]:
    from pipelines.models.batching import sorted_batches, tokenize_texts

    lengths = np.array([len(x) for x in tokenize_texts(pred.tokenizer, frame["text_view"].tolist(), pred.max_length)])
    real = int(lengths.sum())
    fixed = len(lengths) * pred.max_length
    bucketed = int(sum(len(idx) * lengths[idx].max() for idx in sorted_batches(lengths, pred.batch_size)))
    return {
        "lengths": {
            "mean": float(lengths.mean()),
            "p50": float(np.median(lengths)),
            "p90": float(np.percentile(lengths, 90)),
            "share_truncated_at_max": float(np.mean(lengths >= pred.max_length)),
        },
        "fixed": {"computed_tokens": fixed, "pad_share": round(1 - real / fixed, 3)},
        "bucketed": {"computed_tokens": bucketed, "pad_share": round(1 - real / bucketed, 3)},
    }


def ranking(y: np.ndarray, p: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    import pandas as pd

    out = {}
    if 0 < y.sum() < len(y):
        from sklearn.metrics import average_precision_score, roc_auc_score

        out.update(roc_auc=float(roc_auc_score(y, p)), pr_auc=float(average_precision_score(y, p)))
    ra, rb = pd.Series(p).rank().to_numpy(), pd.Series(ref).rank().to_numpy()
    out["spearman_vs_fixed_fp32"] = float(np.corrcoef(ra, rb)[0, 1]) if np.std(ra) and np.std(rb) else float("nan")
    return out


def run(ctx: Context) -> StageResult:
    import torch

    load_bundle = require("pipelines.models", "load_bundle")
    from pipelines.models.device import cpu_has_native_bf16, resolve_inference_precision

    config = ctx.config()
    torch.set_num_threads(config.training.num_threads or os.cpu_count() or 1)
    result = StageResult("score", repeat=ctx.repeats(1))
    full, labels_all, source = labelled_frame(ctx, config, ctx.score_limit + FIT_ROWS)
    trained = find_trained_bundle(ctx)
    if trained:
        path, model_note = trained, f"trained transformer bundle {trained}"
        frame, labels = full, labels_all
    else:
        fit_n = FIT_ROWS if len(full) >= 2 * FIT_ROWS else len(full) // 2
        path = standin_transformer_bundle(ctx, config, full.iloc[:fit_n], labels_all[:fit_n])
        frame, labels = full.iloc[fit_n:].reset_index(drop=True), labels_all[fit_n:]
        model_note = (
            f"STAND-IN bundle (no trained model found): packaged MiniLM encoder as shipped + ChurnHead "
            f"fitted by the harness on {fit_n} other customers + {config.training.calibration} calibrator; "
            "same cost per customer as the real model, not its accuracy"
        )
    ctx.shared["transformer_bundle"] = str(path)
    batch = config.scoring.batch_size  # None: the predictor's default for the device

    def load(**options):
        pred = load_bundle(path, device="cpu", **{"batch_size": batch, **options})
        trained_at = pred.max_length
        pred.max_length = ctx.score_max_length or trained_at
        return pred, trained_at

    fp32, trained_length = load(precision="fp32")
    seq, batch = fp32.max_length, fp32.batch_size
    variants = {"fixed_fp32": (fp32, lambda f: fixed_length_proba(fp32, f)), "bucketed_fp32": (fp32, None)}
    if cpu_has_native_bf16():
        variants["bucketed_bf16"] = (load(precision="bf16")[0], None)
    else:
        result.notes.append("bucketed_bf16 not measured: this CPU has no native bf16 (AMX / AVX512-BF16)")
    variants["bucketed_int8"] = (load(precision="int8")[0], None)
    from pipelines.models.onnx_backend import onnxruntime_version

    ort_version = onnxruntime_version()
    if ort_version:
        for precision in ("onnx", "onnx-int8"):
            pred = load(precision=precision)[0]
            if pred.precision == precision:
                variants[_variant(precision)] = (pred, None)
            else:
                result.notes.append(f"{_variant(precision)} not measured: {pred.onnx_fallback}")
        if "bucketed_onnx" in variants:
            variants.update(_more_int8(result, load, path, full.iloc[:FIT_ROWS]))
    else:
        result.notes.append("bucketed_onnx* not measured: onnxruntime is not installed")
    # What `churn score` runs with the default config: scoring.precision (auto) and its fp32 check.
    default_precision = resolve_inference_precision(torch.device("cpu"), config.scoring.precision)
    guarded = load(**config.scoring.predictor_options())[0] if default_precision != "fp32" else None
    tokens = token_stats(fp32, frame)
    result.info.update(
        {
            "customers_scored": len(frame),
            "input": source,
            "batch_size": batch,
            "max_length": seq,
            "bundle_max_length": trained_length,
            "model": model_note,
            "bundle": str(path),
            "torch_threads": torch.get_num_threads(),
            "tokens": tokens,
            "cpu_native_bf16": cpu_has_native_bf16(),
            "isa_caps": {k: os.environ.get(k) for k in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")},
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "onnxruntime": ort_version,
            "onnxruntime_isa": "ONNX Runtime's MLAS kernels pick their ISA from CPUID at run time; no "
            "environment variable caps it, so the ISA caps above limit PyTorch / oneDNN only",
            "labels": f"churned at the latest fully observed cutoff ({int(labels.sum())} of {len(labels)} churned)",
        }
    )
    ref = None
    for name, (pred, custom) in variants.items():
        predict = custom or pred.predict_proba
        predict(frame.head(batch))  # warm-up: thread pools, allocator, packed / quantized kernels
        seconds, p = [], None
        for _ in range(result.repeat):
            result.load_avg_1m.append(load1())
            start = time.perf_counter()
            p = np.asarray(predict(frame), dtype=np.float64)
            seconds.append(time.perf_counter() - start)
        logger.info("  score %s: %d customers in %.2f s (load1 %.2f)", name, len(frame), seconds[-1], load1())
        ref = p if ref is None else ref
        result.add(
            f"{name}_customers_per_s",
            [len(frame) / s for s in seconds],
            "customers/s",
            f"batch {batch}, max_length {seq}, {len(frame):,} customers",
        )
        if name != "fixed_fp32":
            result.add(f"{name}_max_abs_dp", float(np.max(np.abs(p - ref))), "abs dp", "max abs(p - p_fixed_fp32)")
            result.add(
                f"{name}_vs_fixed_fp32",
                result.metrics[f"{name}_customers_per_s"].value / result.metrics["fixed_fp32_customers_per_s"].value,
                "x",
                "speed over fixed_fp32 in this run",
            )
        for key, value in ranking(labels, p, ref).items():
            if not (name == "fixed_fp32" and key.startswith("spearman")):
                result.add(f"{name}_{key}", value, "")
    result.add(
        "int8_hidden_state_rel_error",
        _hidden_error(fp32, variants["bucketed_int8"][0], frame.head(32)),
        "ratio",
        "norm(h_int8 - h_fp32) / norm(h_fp32), encoder last hidden state, 32 customers (diagnostic)",
    )
    _default_path(result, config, guarded, frame)
    _compute_ceiling(result, fp32, tokens, len(frame))
    if "bucketed_onnx" in variants:
        _length_sweep(result, variants["bucketed_onnx"][0], frame, labels, seq)
    keys = [k for k in ("roc_auc", "pr_auc") if f"fixed_fp32_{k}" in result.metrics]
    for variant in [v for v in variants if v != "fixed_fp32"]:
        checks = {
            k: round(result.metrics[f"{variant}_{k}"].value, 2) == round(result.metrics[f"fixed_fp32_{k}"].value, 2)
            for k in keys
        }
        checks["spearman_2dp_is_1.00"] = round(result.metrics[f"{variant}_spearman_vs_fixed_fp32"].value, 2) == 1.0
        result.info[f"{variant}_ranking_unchanged_2dp"] = all(checks.values())
        result.info[f"{variant}_ranking_checks"] = checks
    if torch.cuda.is_available():
        result.notes.append("GPU figures: the gpu stage (scripts/gpu_check.sh)")
    result.load_avg_1m.append(load1())
    return result


def _more_int8(result: StageResult, load, path, calibration_frame) -> dict:
    """Static and block-wise int8 graphs of the bundle's fp32 graph (benchmarks.onnx_quant), as predictors."""
    import tempfile
    from pathlib import Path

    import torch

    from benchmarks.onnx_quant import block_int8, calibration_feeds, static_int8
    from pipelines.models.onnx_backend import OnnxSession

    src = Path(path) / "onnx" / "model.onnx"
    if not src.is_file():
        result.notes.append("static / block int8 not measured: the bundle has no onnx/model.onnx")
        return {}
    out = {}
    base = load(precision="onnx")[0]
    feeds = calibration_feeds(base, calibration_frame, base.batch_size)
    builders = {
        "bucketed_onnx_int8_static": lambda dst: static_int8(src, dst, feeds),
        "bucketed_onnx_int8_block": lambda dst: block_int8(src, dst),
    }
    with tempfile.TemporaryDirectory(prefix="churn-bench-int8-") as tmp:
        for name, build in builders.items():
            dst = Path(tmp) / f"{name}.onnx"
            try:
                build(dst)
                pred = load(precision="onnx")[0]
                pred._onnx = OnnxSession(dst, num_threads=torch.get_num_threads())
            except Exception as exc:  # a quantizer that cannot handle this graph: say so, measure the rest
                result.notes.append(f"{name} not measured: {type(exc).__name__}: {exc}"[:300])
                continue
            out[name] = (pred, None)
    result.info["int8_calibration_rows"] = len(calibration_frame)
    return out


def _default_path(result: StageResult, config, guarded, frame) -> None:
    """Copy the variant the default config scores with into ``default_*`` metrics (what the target judges).

    The guarded predictor decides on the first ``scoring.precision_check_rows`` customers whether the
    reduced precision stays within ``scoring.precision_tolerance`` of fp32; if not, the default is fp32.
    """
    chosen = "fp32"
    if guarded is not None:
        guarded.predict_proba(frame.head(max(config.scoring.precision_check_rows, 1)))
        result.info["default_precision_check"] = guarded.precision_check
        chosen = guarded.precision
    variant = _variant(chosen)
    result.info["default_path"] = (
        f"{variant} (scoring.precision: {config.scoring.precision}"
        + (f", fp32 check: {guarded.precision_check}" if guarded is not None else "")
        + ")"
    )
    result.add(
        "default_customers_per_s",
        result.metrics[f"{variant}_customers_per_s"].value,
        "customers/s",
        f"= {variant}: what scoring runs with the default config on this machine",
    )
    result.add(
        "default_max_abs_dp",
        result.metrics[f"{variant}_max_abs_dp"].value,
        "abs dp",
        f"= {variant}: max abs(p - p_fixed_fp32)",
    )
    result.add(
        "default_vs_fixed_fp32",
        result.metrics[f"{variant}_vs_fixed_fp32"].value,
        "x",
        f"= {variant}: speed over fixed_fp32 in this run",
    )


def encoder_flops_per_customer(encoder_config, tokens_per_customer: float, seq: int) -> float:
    """Multiply-adds x 2 of one customer's encoder pass: the dense layers per token plus attention per token.

    Per layer and token: Q, K, V and output projections (4 H^2), the feed-forward block (2 H I) and the two
    attention products against the batch's sequence (2 seq H). Embedding lookups, LayerNorm, softmax and the
    head are left out, so this is a lower bound on the work and the ceiling below is an upper bound on speed.
    """
    hidden, inner = encoder_config.hidden_size, encoder_config.intermediate_size
    per_token = 4 * hidden * hidden + 2 * hidden * inner + 2 * seq * hidden
    return 2.0 * encoder_config.num_hidden_layers * per_token * tokens_per_customer


def gemm_gflops(rows: int, hidden: int, inner: int, precision: str, seconds: float = 2.0) -> float:
    """Sustained GFLOP/s of the encoder's largest matmul (rows x hidden @ hidden x inner) on this CPU.

    fp32: torch.matmul (oneDNN / MKL sgemm, the best fp32 GEMM PyTorch has here). int8: a dynamically
    quantized Linear (fbgemm / oneDNN u8s8, activation quantization included), the kernel family the
    int8 scoring variants run on.
    """
    import torch

    x = torch.randn(rows, hidden)
    if precision == "int8":
        layer = torch.ao.quantization.quantize_dynamic(
            torch.nn.Sequential(torch.nn.Linear(hidden, inner, bias=False)), {torch.nn.Linear}, dtype=torch.qint8
        )

        def step():
            return layer(x)
    else:
        w = torch.randn(hidden, inner)

        def step():
            return x @ w

    with torch.inference_mode():
        for _ in range(3):
            step()
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            step()
            n += 1
        elapsed = time.perf_counter() - start
    return 2.0 * rows * hidden * inner * n / elapsed / 1e9


def _compute_ceiling(result: StageResult, fp32, tokens: dict, customers: int) -> None:
    """What this CPU could score at best: the encoder's FLOPs per customer against its measured GEMM peak.

    If the ceiling is under the target, no fp32-exact backend can meet it on this machine; only less work
    (fewer tokens, a smaller encoder) or lower precision can.
    """
    cfg = fp32.model.encoder.config
    seq = fp32.max_length
    per_customer = {
        "fixed": encoder_flops_per_customer(cfg, seq, seq),
        "bucketed": encoder_flops_per_customer(cfg, tokens["bucketed"]["computed_tokens"] / customers, seq),
    }
    rows = fp32.batch_size * seq
    peak = {p: gemm_gflops(rows, cfg.hidden_size, cfg.intermediate_size, p) for p in ("fp32", "int8")}
    result.add(
        "encoder_gflop_per_customer",
        per_customer["bucketed"] / 1e9,
        "GFLOP",
        "bucketed tokens, dense layers + attention",
    )
    result.add("encoder_gflop_per_customer_fixed", per_customer["fixed"] / 1e9, "GFLOP", f"every row at {seq} tokens")
    for precision, gflops in peak.items():
        result.add(
            f"gemm_{precision}_gflops",
            gflops,
            "GFLOP/s",
            f"{rows} x {cfg.hidden_size} @ {cfg.hidden_size} x {cfg.intermediate_size}, all threads",
        )
        result.add(
            f"ceiling_{precision}_customers_per_s",
            gflops * 1e9 / per_customer["bucketed"],
            "customers/s",
            f"bucketed tokens at the {precision} GEMM peak: an upper bound (non-GEMM work left out)",
        )
    for name in ("fixed_fp32", "bucketed_fp32", "bucketed_onnx", "default"):
        key = f"{name}_customers_per_s"
        if key in result.metrics:
            flops = per_customer["fixed" if name == "fixed_fp32" else "bucketed"]
            result.add(
                f"{name}_share_of_fp32_peak",
                result.metrics[key].value * flops / (peak["fp32"] * 1e9),
                "share",
                "achieved encoder GFLOP/s over the fp32 GEMM peak",
            )
    need = 150 * per_customer["bucketed"] / 1e9
    result.notes.append(
        f"compute ceiling: {per_customer['bucketed'] / 1e9:.2f} GFLOP per customer at {seq} tokens (bucketed); "
        f"150 customers/s needs {need:.0f} GFLOP/s; this CPU's GEMM peak is {peak['fp32']:.0f} GFLOP/s fp32 "
        f"({result.metrics['ceiling_fp32_customers_per_s'].value:.0f} customers/s at best) and "
        f"{peak['int8']:.0f} GFLOP/s int8 ({result.metrics['ceiling_int8_customers_per_s'].value:.0f} customers/s)"
    )


def _variant(precision: str) -> str:
    return "bucketed_" + precision.replace("-", "_")


def _length_sweep(result: StageResult, pred, frame, labels, seq: int) -> None:
    """Ranking quality and speed at shorter token budgets (exact fp32 graph, one pass each)."""
    original = pred.max_length
    try:
        for length in (64, 96):
            if length >= seq:
                continue
            pred.max_length = length
            start = time.perf_counter()
            p = np.asarray(pred.predict_proba(frame), dtype=np.float64)
            secs = time.perf_counter() - start
            result.add(f"length_{length}_customers_per_s", len(frame) / secs, "customers/s", "bucketed_onnx, one run")
            for key, value in ranking(labels, p, p).items():
                if not key.startswith("spearman"):
                    result.add(f"length_{length}_{key}", value, "", f"bucketed_onnx at {length} tokens")
    finally:
        pred.max_length = original


def _hidden_error(fp32, int8, frame) -> float:
    """How far int8 moves the encoder's token states: the source of any |dp| downstream."""
    import torch

    from pipelines.models.batching import pad_batch, tokenize_texts

    ids, mask = pad_batch(tokenize_texts(fp32.tokenizer, frame["text_view"].tolist(), fp32.max_length), fp32.pad_id)
    with torch.inference_mode():
        a = fp32.model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state[mask.bool()]
        b = int8.model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state[mask.bool()]
    return float((a - b).norm() / a.norm())
