"""Training loop of the transformer candidate (in the style of Made With ML's train.py / accelerate's examples).

Seeded before the model is built; class-weighted BCE; AdamW with separate encoder/head learning rates
and no weight decay on biases/norms; linear warmup then decay; gradient clipping and accumulation;
length-bucketed dynamic-padding batches; early stopping on validation PR-AUC restoring the best
weights; DistributedDataParallel when launched by ``torchrun``.

Why one file over 400 lines: the encoding, the step functions and the loop share one device/precision/
distributed context and read best top to bottom, as the examples it follows do.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from pipelines.config import Config
from pipelines.contract import LABEL_COLUMN, TEXT_COLUMN
from pipelines.models.batching import (
    LengthGroupedBatchSampler,
    RowProgress,
    format_eta,
    pad_batch,
    sorted_batches,
    tokenize_texts,
)
from pipelines.models.device import (
    DistContext,
    autocast_context,
    bf16_enabled,
    configure_threads,
    dist_context_from_env,
    init_distributed,
    resolve_device,
    set_seed,
)
from pipelines.models.metrics import pr_auc
from pipelines.models.network import (
    ChurnModel,
    NumericScaler,
    build_churn_model,
    load_tokenizer,
    resolve_encoder_path,
)

logger = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 10.0

EpochCallback = Callable[[int, dict], None]


@dataclass
class EncodedSplit:
    """A split tokenized once (unpadded ids) with standardized numerics and float labels."""

    ids: list[np.ndarray]
    numeric: np.ndarray
    labels: np.ndarray
    pooled: np.ndarray | None = None  # cached text vectors of a frozen encoder

    @property
    def lengths(self) -> list[int]:
        return [len(x) for x in self.ids]

    def __len__(self) -> int:
        return len(self.ids)


def encode_split(tokenizer, frame: pd.DataFrame, scaler: NumericScaler, max_length: int) -> EncodedSplit:
    ids = tokenize_texts(tokenizer, frame[TEXT_COLUMN].tolist(), max_length)
    labels = frame[LABEL_COLUMN].to_numpy(dtype=np.float32)
    return EncodedSplit(ids, scaler.transform(frame), labels)


def make_batch(split: EncodedSplit, idx, pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    idx = np.asarray(idx)
    batch = {
        "numeric": torch.from_numpy(split.numeric[idx]).to(device, non_blocking=True),
        "labels": torch.from_numpy(split.labels[idx]).to(device, non_blocking=True),
    }
    if split.pooled is not None:
        batch.update(input_ids=None, attention_mask=None, pooled=torch.from_numpy(split.pooled[idx]).to(device))
    else:
        input_ids, mask = pad_batch([split.ids[i] for i in idx], pad_id)
        batch.update(
            input_ids=input_ids.to(device, non_blocking=True), attention_mask=mask.to(device, non_blocking=True)
        )
    return batch


def cache_frozen_embeddings(
    model: ChurnModel,
    split: EncodedSplit,
    *,
    batch_size: int,
    pad_id: int,
    device: torch.device,
    amp=contextlib.nullcontext,
) -> None:
    """Run a frozen encoder once and keep its pooled vectors: every epoch then trains only the head.

    Exact, not an approximation: a frozen encoder stays in eval mode (no dropout), so its output
    for a row never changes. Costs rows x hidden floats of memory.
    """
    pooled = None
    progress = RowProgress("frozen encoder vectors", len(split))
    with torch.inference_mode(), amp():
        for idx in sorted_batches(split.lengths, batch_size):
            input_ids, mask = pad_batch([split.ids[i] for i in idx], pad_id)
            vec = model.embed(input_ids.to(device), mask.to(device)).float().cpu().numpy()
            if pooled is None:
                pooled = np.empty((len(split), vec.shape[1]), dtype=np.float32)
            pooled[idx] = vec
            progress.step(len(idx))
    split.pooled = pooled


def train_step(
    model: nn.Module, batch: dict, loss_fn: nn.Module, *, loss_scale: float = 1.0, amp=contextlib.nullcontext
) -> float:
    """Forward + backward of one micro-batch (no optimizer step); returns the unscaled loss."""
    with amp():
        logits = model(batch["input_ids"], batch["attention_mask"], batch["numeric"], pooled=batch.get("pooled"))
    loss = loss_fn(logits.float(), batch["labels"])
    (loss * loss_scale).backward()
    return float(loss.detach())


def eval_step(
    model: nn.Module, batch: dict, loss_fn: nn.Module, *, amp=contextlib.nullcontext
) -> tuple[float, np.ndarray]:
    """Loss and sigmoid scores of one batch, without gradients."""
    with torch.inference_mode(), amp():
        logits = model(
            batch["input_ids"], batch["attention_mask"], batch["numeric"], pooled=batch.get("pooled")
        ).float()
        loss = loss_fn(logits, batch["labels"])
    return float(loss), torch.sigmoid(logits).cpu().numpy().astype(np.float64)


def evaluate(
    model: nn.Module,
    split: EncodedSplit,
    loss_fn: nn.Module,
    *,
    batch_size: int,
    pad_id: int,
    device: torch.device,
    amp=contextlib.nullcontext,
) -> tuple[float, np.ndarray]:
    """(mean loss, scores in row order) over a whole split, in length-sorted batches."""
    was_training = model.training
    model.eval()
    scores = np.empty(len(split), dtype=np.float64)
    total = 0.0
    progress = RowProgress("evaluation pass", len(split))
    for idx in sorted_batches(split.lengths, batch_size):
        loss, p = eval_step(model, make_batch(split, idx, pad_id, device), loss_fn, amp=amp)
        scores[idx] = p
        total += loss * len(idx)
        progress.step(len(idx))
    model.train(was_training)
    return total / max(len(split), 1), scores


def _is_no_decay(name: str, param: nn.Parameter) -> bool:
    """Biases and normalisation weights (all 1-D) get no weight decay, as in BERT's recipe."""
    lowered = name.lower()
    return param.ndim < 2 or lowered.endswith("bias") or "layernorm" in lowered or "layer_norm" in lowered


def build_optimizer(model: ChurnModel, config: Config) -> torch.optim.AdamW:
    """AdamW with encoder (or LoRA) and head groups, each split into decay / no-decay."""
    t = config.training
    encoder_lr = t.lora_lr if config.model.fine_tune == "lora" else t.encoder_lr
    groups = []
    for prefix, lr in (("encoder.", encoder_lr), ("head.", t.head_lr)):
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad and n.startswith(prefix)]
        decay = [p for n, p in params if not _is_no_decay(n, p)]
        no_decay = [p for n, p in params if _is_no_decay(n, p)]
        if decay:
            groups.append({"params": decay, "lr": lr, "weight_decay": t.weight_decay, "name": f"{prefix}decay"})
        if no_decay:
            groups.append({"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": f"{prefix}no_decay"})
    return torch.optim.AdamW(groups)


def linear_warmup_decay(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """LR multiplier rising linearly to 1 over warmup, then falling linearly to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class TransformerRun:
    """A trained transformer (best epoch restored, unwrapped, eval mode) and how it got there."""

    model: ChurnModel
    tokenizer: object
    scaler: NumericScaler
    encoder_path: str
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_val_pr_auc: float = math.nan
    val_raw: np.ndarray | None = None
    pos_weight: float = 1.0
    seconds: float = 0.0
    device: str = "cpu"
    dist: DistContext = field(default_factory=DistContext)
    train_rows: int = 0


def _all_reduce_mean(value: float, ctx: DistContext, device: torch.device) -> float:
    if not ctx.enabled:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / ctx.world_size


def train_transformer(
    config: Config,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    feature_names: list[str],
    *,
    on_epoch_end: EpochCallback | None = None,
) -> TransformerRun:
    """Fine-tune (or head-train) the encoder model; returns the best-epoch model and its history."""
    t, m = config.training, config.model
    started = time.perf_counter()
    configure_threads(t.num_threads)
    ctx = dist_context_from_env()
    device = resolve_device(t.device, ctx.local_rank if ctx.enabled else None)
    ctx = init_distributed(device)
    # bf16 autocast on GPUs (training.bf16_on_gpu) and, per training.precision, on CPUs with native bf16.
    amp = lambda: autocast_context(device, t.bf16_on_gpu, t.precision)  # noqa: E731
    # CPU validation stays fp32: its scores fit the calibrator, and CPU scoring is checked against fp32.
    eval_amp = amp if device.type == "cuda" else contextlib.nullcontext
    set_seed(t.seed)

    encoder_path = resolve_encoder_path(m.encoder)
    tokenizer = load_tokenizer(encoder_path)
    pad_id = 0 if tokenizer.pad_token_id is None else int(tokenizer.pad_token_id)
    scaler = NumericScaler.fit(train, feature_names)
    train_split = encode_split(tokenizer, train, scaler, m.max_length)
    val_split = encode_split(tokenizer, validation, scaler, m.max_length)
    positives = float(train_split.labels.sum())
    negatives = float(len(train_split) - positives)
    pos_weight = negatives / positives if positives > 0 else 1.0

    model = build_churn_model(m, len(feature_names), encoder_path).to(device)
    if m.fine_tune == "frozen":
        cache_started = time.perf_counter()
        for split in (train_split, val_split):
            cache_frozen_embeddings(
                model, split, batch_size=t.eval_batch_size, pad_id=pad_id, device=device, amp=eval_amp
            )
        if ctx.is_main:
            logger.info(
                "frozen encoder: cached text vectors of %d rows in %.1f s",
                len(train_split) + len(val_split),
                time.perf_counter() - cache_started,
            )
    model.train()
    train_model: nn.Module = model
    if ctx.enabled:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, device=device))
    sampler = LengthGroupedBatchSampler(
        train_split.lengths, t.batch_size, seed=t.seed, shuffle=True, num_replicas=ctx.world_size, rank=ctx.rank
    )
    steps_per_epoch = math.ceil(len(sampler) / t.gradient_accumulation_steps)
    total_steps = steps_per_epoch * t.epochs
    optimizer = build_optimizer(model, config)
    scheduler = linear_warmup_decay(optimizer, math.ceil(t.warmup_ratio * total_steps), total_steps)
    trainable = [p for p in model.parameters() if p.requires_grad]

    if ctx.is_main:
        logger.info(
            "training transformer on %s%s: %d train / %d validation rows, %d epochs x %d steps, "
            "batch %d x accum %d x world %d, pos_weight %.3f, fine_tune=%s",
            device,
            " (bf16 autocast)" if bf16_enabled(device, t.bf16_on_gpu, t.precision) else "",
            len(train_split),
            len(val_split),
            t.epochs,
            steps_per_epoch,
            t.batch_size,
            t.gradient_accumulation_steps,
            ctx.world_size,
            pos_weight,
            m.fine_tune,
        )

    history: list[dict] = []
    best_score, best_epoch, best_state, best_val_raw, stale = -math.inf, 0, None, None, 0
    global_step = 0
    for epoch in range(1, t.epochs + 1):
        sampler.set_epoch(epoch)
        model.train()
        epoch_start = last_log = time.perf_counter()
        loss_sum, seen, n_batches = 0.0, 0, len(sampler)
        optimizer.zero_grad(set_to_none=True)
        for i, idx in enumerate(sampler):
            batch = make_batch(train_split, idx, pad_id, device)
            step_now = (i + 1) % t.gradient_accumulation_steps == 0 or i + 1 == n_batches
            sync = contextlib.nullcontext() if step_now or not ctx.enabled else train_model.no_sync()
            with sync:
                loss = train_step(train_model, batch, loss_fn, loss_scale=1.0 / t.gradient_accumulation_steps, amp=amp)
            loss_sum += loss * len(idx)
            seen += len(idx)
            if step_now:
                torch.nn.utils.clip_grad_norm_(trainable, t.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                global_step += 1
                now = time.perf_counter()
                if ctx.is_main and (global_step % t.log_every_steps == 0 or now - last_log >= LOG_EVERY_SECONDS):
                    last_log = now
                    rate = seen * ctx.world_size / (now - epoch_start)
                    remaining = (n_batches - i - 1) * t.batch_size * ctx.world_size / max(rate, 1e-9)
                    logger.info(
                        "epoch %d/%d step %d/%d loss %.4f lr %.2e | %.1f samples/s | epoch ETA %s",
                        epoch,
                        t.epochs,
                        (i + 1) // t.gradient_accumulation_steps,
                        steps_per_epoch,
                        loss_sum / seen,
                        scheduler.get_last_lr()[0],
                        rate,
                        format_eta(remaining),
                    )
        train_seconds = time.perf_counter() - epoch_start
        train_loss = _all_reduce_mean(loss_sum / max(seen, 1), ctx, device)
        samples_per_s = seen * ctx.world_size / max(train_seconds, 1e-9)

        val_loss, val_raw = evaluate(
            model, val_split, loss_fn, batch_size=t.eval_batch_size, pad_id=pad_id, device=device, amp=eval_amp
        )
        val_pr = pr_auc(val_split.labels.astype(np.int64), val_raw)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_pr_auc": val_pr,
            "samples_per_s": samples_per_s,
            "lr": float(scheduler.get_last_lr()[0]),
            "seconds": time.perf_counter() - epoch_start,
        }
        history.append(row)
        if ctx.is_main:
            logger.info(
                "epoch %d/%d: train_loss %.4f val_loss %.4f val_pr_auc %.4f (%.1f samples/s)",
                epoch,
                t.epochs,
                train_loss,
                val_loss,
                val_pr,
                samples_per_s,
            )
            if on_epoch_end is not None:
                on_epoch_end(epoch, dict(row))

        score = val_pr if not math.isnan(val_pr) else -val_loss
        if score > best_score:
            best_score, best_epoch, best_val_raw, stale = score, epoch, val_raw, 0
            best_state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        else:
            stale += 1
            if stale >= t.early_stopping_patience:
                if ctx.is_main:
                    logger.info(
                        "early stopping after epoch %d: no validation PR-AUC gain for %d epochs "
                        "(best %.4f at epoch %d)",
                        epoch,
                        stale,
                        best_score,
                        best_epoch,
                    )
                break

    if best_state is not None and best_epoch != history[-1]["epoch"]:
        with torch.no_grad():
            params = dict(model.named_parameters())
            for name, value in best_state.items():
                params[name].copy_(value)
        if ctx.is_main:
            logger.info("restored weights of best epoch %d", best_epoch)
    model.eval()
    return TransformerRun(
        model=model,
        tokenizer=tokenizer,
        scaler=scaler,
        encoder_path=encoder_path,
        history=history,
        best_epoch=best_epoch,
        best_val_pr_auc=history[best_epoch - 1]["val_pr_auc"] if best_epoch else math.nan,
        val_raw=best_val_raw,
        pos_weight=pos_weight,
        seconds=time.perf_counter() - started,
        device=str(device),
        dist=ctx,
        train_rows=len(train),
    )
