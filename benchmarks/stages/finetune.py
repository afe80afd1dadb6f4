"""Stage finetune: CPU fine-tuning in fp32 vs bf16 autocast, and the text view's style and token budget.

On the scale's warehouse (the demo's is 2k), with the platform's own ``build_training_sets`` and
``train_transformer`` (capped by ``--quality-max-train``, default 400 rows, ``--finetune-epochs`` epochs):

- ``verbose_fp32`` / ``verbose_bf16``: the default text view, trained with ``training.precision`` fp32 and
  bf16 (same data, seed and batches); samples/s per epoch, best validation PR-AUC, test ROC-AUC / PR-AUC.
  bf16 runs only where the CPU computes bf16 natively (AMX / AVX512-BF16).
- ``compact_<precision>``: ``dataset.text_style: compact`` trained the same way (the faster precision if
  bf16 held its quality, else fp32).
- ``*_len_64`` / ``_96`` / ``_128``: each trained model's test ranking when the text is cut at 64 / 96 / 128
  tokens (raw scores: ranking metrics need no calibration; bf16 autocast for every model where the CPU has
  native bf16, else fp32), plus tokens per customer. Validation and test: a seeded sample of 600 rows each.

Absolute samples/s drift with the load of shared cores over minutes-long runs; the ``train`` stage's
interleaved fp32 / bf16 steps give the cleaner speed ratio. Quality differences of a few hundredths on
~1,000 training rows are within seed noise: the notes say so.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from benchmarks.common import Context, StageResult, load1, require
from benchmarks.stages.data import ensure_data, score_date

logger = logging.getLogger("benchmarks.finetune")

DEFAULT_MAX_TRAIN = 400
EVAL_ROWS = 600  # validation / test rows per model (seeded sample): evaluation passes dominate on 2 busy cores
LENGTHS = (64, 96, 128)


def _sample(frame, n: int, seed: int = 0):
    return frame if len(frame) <= n else frame.sample(n=n, random_state=seed).reset_index(drop=True)


def _test_ranking(run, frame, amp, lengths=LENGTHS) -> dict[str, float]:
    """Test ROC-AUC / PR-AUC of a trained model at each token budget (length-sorted batches, ``amp``)."""
    import torch

    from pipelines.models.metrics import pr_auc, roc_auc
    from pipelines.training.transformer import encode_split, evaluate

    y = frame["churned"].to_numpy().astype(np.int64)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    out = {}
    pad = 0 if run.tokenizer.pad_token_id is None else int(run.tokenizer.pad_token_id)
    for length in lengths:
        split = encode_split(run.tokenizer, frame, run.scaler, length)
        _, scores = evaluate(run.model, split, loss_fn, batch_size=64, pad_id=pad, device=torch.device("cpu"), amp=amp)
        out[f"len_{length}_roc_auc"] = roc_auc(y, scores)
        out[f"len_{length}_pr_auc"] = pr_auc(y, scores)
        lengths_seen = np.array(split.lengths)
        out[f"len_{length}_mean_tokens"] = float(lengths_seen.mean())
        out[f"len_{length}_share_truncated"] = float(np.mean(lengths_seen >= length))
    return out


def run(ctx: Context) -> StageResult:
    import torch

    build_training_sets, load_training_sets = require("pipelines.datasets", "build_training_sets", "load_training_sets")
    train_transformer = require("pipelines.training.transformer", "train_transformer")
    from pipelines.datasets import cap_train_rows
    from pipelines.models.device import autocast_context, cpu_has_native_bf16

    ensure_data(ctx)
    max_train = ctx.shared.get("quality_max_train") or DEFAULT_MAX_TRAIN
    epochs = ctx.shared.get("finetune_epochs") or 2
    result = StageResult("finetune", repeat=1)
    native = cpu_has_native_bf16()
    plan = [("verbose", "fp32")] + ([("verbose", "bf16")] if native else [])
    if not native:
        result.notes.append("bf16 training not measured: this CPU has no native bf16 (AMX / AVX512-BF16)")
    sets_by_style, runs = {}, {}

    def config_for(style: str, precision: str):
        return ctx.config(
            dataset={"text_style": style, "output_dir": str(ctx.work_dir / f"datasets-{style}")},
            training={"max_train_examples": max_train, "epochs": epochs, "precision": precision, "device": "cpu"},
        )

    def train(style: str, precision: str) -> None:
        config = config_for(style, precision)
        if style not in sets_by_style:
            sets_by_style[style] = load_training_sets(build_training_sets(config, score_date(config)))
        sets = sets_by_style[style]
        train_rows = cap_train_rows(sets.train, max_train, config.training.seed)
        name = f"{style}_{precision}"
        result.load_avg_1m.append(load1())
        started = time.perf_counter()
        validation = _sample(sets.validation, EVAL_ROWS)
        run_ = train_transformer(config, train_rows, validation, list(sets.feature_names))
        seconds = time.perf_counter() - started
        runs[name] = run_
        rates = [row["samples_per_s"] for row in run_.history]
        result.add(
            f"{name}_samples_per_s", rates, "samples/s", f"{len(train_rows)} rows x {len(rates)} epochs, batch 32"
        )
        result.add(f"{name}_val_pr_auc", run_.best_val_pr_auc, "", f"best epoch {run_.best_epoch}")
        # one test precision for every model (bf16 autocast where native: the same ranking to ~1e-3, 3x faster)
        test_amp = lambda: autocast_context(torch.device("cpu"), False, "auto")  # noqa: E731
        ranking = _test_ranking(run_, _sample(sets.test, EVAL_ROWS), test_amp)
        for key, value in ranking.items():
            result.add(f"{name}_{key}", value, "")
        result.info[f"{name}_seconds"] = round(seconds, 1)
        result.info[f"{name}_history"] = run_.history
        logger.info(
            "  %s: %.1f samples/s, val PR-AUC %.4f (%.0f s)", name, np.median(rates), run_.best_val_pr_auc, seconds
        )

    for style, precision in plan:
        train(style, precision)
    compact_precision = "fp32"
    if native:
        fp32, bf16 = result.metrics["verbose_fp32_val_pr_auc"].value, result.metrics["verbose_bf16_val_pr_auc"].value
        ratio = result.metrics["verbose_bf16_samples_per_s"].value / result.metrics["verbose_fp32_samples_per_s"].value
        result.add("bf16_vs_fp32_samples_per_s", ratio, "x", "median epoch rate, bf16 autocast over fp32")
        result.add("bf16_minus_fp32_val_pr_auc", bf16 - fp32, "", "same data, seed and batches")
        compact_precision = "bf16" if bf16 >= fp32 - 0.01 else "fp32"
    train("compact", compact_precision)
    first = sets_by_style["verbose"]
    result.info.update(
        {
            "rows": {s: len(first.split(s)) for s in ("train", "validation", "test")},
            "max_train_examples": max_train,
            "epochs": epochs,
            "cpu_native_bf16": native,
            "test_churn_rate": float(first.test["churned"].mean()),
        }
    )
    result.notes.append(
        f"each model trained on at most {max_train} train rows (training.max_train_examples) x {epochs} epochs on "
        "CPU: quality differences of ~0.01-0.02 are within seed noise at this size"
    )
    result.load_avg_1m.append(load1())
    return result
