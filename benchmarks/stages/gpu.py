"""Stage gpu: the GPU figures of issue 15 in one short run (a few minutes on one H100), with the platform's own code.

Prepared on a CPU machine by ``scripts/gpu_pack.py`` (a trained transformer bundle whose encoder weights are
stored in fp16 to fit the transfer, loaded as fp32; a sample of the labelled rows it was evaluated on, without
customer ids; the wheels the GPU image lacks) and run there by ``scripts/gpu_check.sh``. Measures:

- fine-tuning: the train stage's loop (``build_optimizer`` + ``train_step``, bf16 autocast, batch 256 x 128
  tokens) on the bundle's encoder: ``finetune_samples_per_s``, ``finetune_tokens_per_s`` and
  ``finetune_bf16_peak_fraction``;
- scoring at ``--score-max-length`` tokens (128) with ``TransformerPredictor``, the scoring job's predictor:
  ``score_bf16_customers_per_s`` / ``score_fp32_customers_per_s`` end to end (tokenization included, as the job
  runs), ``tokenize_customers_per_s`` (the CPU part alone) and ``encoder_bf16_customers_per_s`` (pre-tokenized
  rows: the GPU part), on ``GPU_ROWS`` customers resampled from the sample;
- the bf16 check: ``score_bf16_max_abs_dp``, the largest change of a calibrated probability under bf16 autocast
  against fp32 on the same GPU (TF32 off), and ROC-AUC / PR-AUC of both on the sample's labels.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Context, StageResult, StageSkipped, require

logger = logging.getLogger("benchmarks.gpu")

GPU_ROWS = 100_000  # customers per timed scoring pass: ~100 batches of 1,024
GPU_BATCH = 1024


def transformer_bundle_dir(path: str | Path) -> Path:
    """The transformer bundle itself, or the one inside a hybrid bundle (``transformer/``)."""
    read_bundle_meta = require("pipelines.models", "read_bundle_meta")
    root = Path(path)
    kind = read_bundle_meta(root).get("kind")
    if kind == "hybrid":
        root = root / "transformer"
        kind = read_bundle_meta(root).get("kind")
    if kind != "transformer":
        raise StageSkipped(f"--bundle {path} is a {kind} bundle: the gpu stage needs a transformer or a hybrid")
    return root


def run(ctx: Context) -> StageResult:
    import torch

    if not torch.cuda.is_available():
        raise StageSkipped("no CUDA GPU on this machine")
    return measure(ctx, "cuda")


def measure(ctx: Context, device: str) -> StageResult:
    """Every figure of the stage on ``device`` (the stage runs it on ``cuda``; tests on ``cpu`` with a tiny model)."""
    import pandas as pd
    import torch

    if not ctx.bundle:
        raise StageSkipped("the gpu stage needs --bundle (scripts/gpu_pack.py writes .gpu/bundle)")
    frame_path = ctx.shared.get("gpu_frame")
    if not frame_path or not Path(frame_path).is_file():
        raise StageSkipped(
            "the gpu stage needs --gpu-frame, labelled rows with the bundle's features (.gpu/frame.parquet)"
        )
    path = transformer_bundle_dir(ctx.bundle)
    frame = pd.read_parquet(frame_path)
    result = StageResult("gpu")
    if device == "cuda":  # the fp32 reference must be fp32, not TF32
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        result.info["gpu"] = torch.cuda.get_device_name(0)
    result.info.update({"bundle": str(path), "sample_rows": len(frame), "torch": torch.__version__})
    _finetune(ctx, result, path)
    _score(ctx, result, path, frame, device)
    return result


def _finetune(ctx: Context, result: StageResult, bundle: Path) -> None:
    """The train stage's loop on the bundle's encoder; its figures under ``finetune_*``."""
    from benchmarks.stages import train

    saved = dict(ctx.config_overrides)
    ctx.config_overrides["model"] = {"encoder": str(bundle / "encoder"), "max_length": ctx.score_max_length or 128}
    try:
        trained = train.run(ctx)
    finally:
        ctx.config_overrides.clear()
        ctx.config_overrides.update(saved)
    for key in ("samples_per_s", "tokens_per_s", "step_seconds", "bf16_peak_fraction"):
        if key in trained.metrics:
            result.metrics[f"finetune_{key}"] = trained.metrics[key]
    result.info["finetune"] = {k: v for k, v in trained.info.items() if k not in ("encoder",)}
    result.notes.extend(f"finetune: {note}" for note in trained.notes)


def _score(ctx: Context, result: StageResult, bundle: Path, frame, device: str) -> None:
    import torch

    load_bundle = require("pipelines.models", "load_bundle")
    from pipelines.contract import LABEL_COLUMN, TEXT_COLUMN
    from pipelines.models.batching import tokenize_texts
    from pipelines.models.metrics import pr_auc, roc_auc

    length = ctx.score_max_length or 128
    preds = {}
    for precision in ("fp32", "bf16"):
        pred = load_bundle(bundle, device=device, precision=precision, batch_size=GPU_BATCH)
        pred.max_length = length
        preds[precision] = pred
    labels = frame[LABEL_COLUMN].to_numpy().astype(np.int64) if LABEL_COLUMN in frame.columns else None

    # the bf16 check on the real sample: calibrated probabilities, bf16 autocast against fp32 on the same device
    p = {precision: pred.predict_proba(frame) for precision, pred in preds.items()}
    result.add(
        "score_bf16_max_abs_dp",
        float(np.max(np.abs(p["bf16"] - p["fp32"]))),
        "abs dp",
        f"max abs(p_bf16 - p_fp32), calibrated, {len(frame):,} labelled rows, {length} tokens, TF32 off",
    )
    if labels is not None and 0 < labels.sum() < len(labels):
        for precision, probs in p.items():
            result.add(f"score_{precision}_roc_auc", roc_auc(labels, probs), "", f"{len(frame):,} labelled rows")
            result.add(f"score_{precision}_pr_auc", pr_auc(labels, probs), "", f"{len(frame):,} labelled rows")

    rows = int(ctx.shared.get("gpu_rows") or GPU_ROWS)
    big = frame.sample(n=rows, replace=len(frame) < rows, random_state=1).reset_index(drop=True)
    texts = big[TEXT_COLUMN].tolist()

    def timed(fn) -> tuple[float, object]:
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, out

    seconds, ids = timed(lambda: tokenize_texts(preds["bf16"].tokenizer, texts, length))
    result.add("tokenize_customers_per_s", rows / seconds, "customers/s", "the fast tokenizer alone (CPU)")
    for precision, pred in preds.items():
        pred.predict_proba(big.head(4 * GPU_BATCH))  # warm-up: kernels, allocator
        seconds, _ = timed(lambda pred=pred: pred.predict_proba(big))
        result.add(
            f"score_{precision}_customers_per_s",
            rows / seconds,
            "customers/s",
            f"TransformerPredictor.predict_proba end to end (tokenize, length-bucketed batches of {GPU_BATCH}, "
            f"{'bf16 autocast' if precision == 'bf16' else 'fp32'}), {length} tokens, {rows:,} customers",
        )
    numeric = preds["bf16"].scaler.transform(big)
    seconds, _ = timed(lambda: preds["bf16"]._logits(ids, numeric))
    result.add(
        "encoder_bf16_customers_per_s",
        rows / seconds,
        "customers/s",
        "pre-tokenized rows: padding, host-device copies and the bf16 network only",
    )
    result.info["tokens_per_customer_mean"] = float(np.mean([len(x) for x in ids]))
