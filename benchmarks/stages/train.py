"""Stage train: fine-tuning throughput of the default encoder (samples/s, tokens/s per step).

A few optimizer steps of the platform's own pieces (``build_churn_model``, ``build_optimizer``,
``train_step``, bf16 autocast on GPU, grad clipping) on synthetic text views truncated to
``model.max_length`` tokens (so every row is ~max_length tokens), batch ``training.batch_size``.
On a GPU also the achieved fraction of dense bf16 peak from FLOPs ~ 6 * params * tokens. On a CPU with
native bf16 (AMX / AVX512-BF16) each batch is stepped once in fp32 and once under bf16 autocast
(``cpu_bf16_*``, ``training.precision: bf16``), interleaved so both see the same load.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from benchmarks.common import Context, StageResult, load1, require

logger = logging.getLogger("benchmarks.train")

# Dense bf16 tensor-core peak (no sparsity), FLOP/s; most specific names first.
BF16_PEAK = {
    "H100 PCIe": 756e12,
    "H100 NVL": 835e12,
    "H100": 989e12,
    "H200": 989e12,
    "A100": 312e12,
    "L4": 121e12,
    "A10G": 70e12,
}


def bf16_peak(name: str) -> float | None:
    for key, value in BF16_PEAK.items():
        if key.lower() in name.lower():
            return value
    return None


def run(ctx: Context) -> StageResult:
    import torch

    build_churn_model, NumericScaler = require("pipelines.models", "build_churn_model", "NumericScaler")  # noqa: N806
    build_optimizer, train_step, make_batch, encode_split = require(
        "pipelines.training.transformer", "build_optimizer", "train_step", "make_batch", "encode_split"
    )
    from benchmarks.synthetic import synthetic_frame
    from pipelines.models.device import autocast_context, cpu_has_native_bf16
    from pipelines.models.network import load_tokenizer, resolve_encoder_path

    config = ctx.config()
    cuda = torch.cuda.is_available() and config.training.device != "cpu"
    device = torch.device("cuda" if cuda else "cpu")
    if not cuda:
        torch.set_num_threads(config.training.num_threads or os.cpu_count() or 1)
    batch, seq = config.training.batch_size, config.model.max_length
    if cuda:  # a GPU step is short: a bigger batch measures the device, not Python overhead
        batch = max(batch, 256)
    warmup, steps = (3, 20) if cuda else (1, max(3, ctx.repeats(3)))
    result = StageResult("train", repeat=steps)

    torch.manual_seed(config.training.seed)
    encoder_path = resolve_encoder_path(config.model.encoder)
    tokenizer = load_tokenizer(encoder_path)
    frame = synthetic_frame(batch * (warmup + steps), seed=1, items=(16, 22))
    frame["churned"] = (np.random.default_rng(0).random(len(frame)) < 0.3).astype(int)
    names = [c for c in frame.columns if c not in ("customer_id", "text_view", "churned")]
    scaler = NumericScaler.fit(frame, names)
    split = encode_split(tokenizer, frame, scaler, seq)
    model = build_churn_model(config.model, len(names), encoder_path).to(device).train()
    optimizer = build_optimizer(model, config)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    amp = lambda: autocast_context(device, config.training.bf16_on_gpu)  # noqa: E731
    # On a CPU with native bf16, every batch is also stepped under bf16 autocast (training.precision bf16),
    # right after its fp32 step: the two see the same load, so their ratio holds on shared cores.
    cpu_bf16 = not cuda and cpu_has_native_bf16()
    bf16_amp = lambda: autocast_context(device, False, "bf16")  # noqa: E731
    step_seconds, tokens, bf16_seconds = [], [], []

    def one_step(b, amp_) -> float:
        if cuda:
            torch.cuda.synchronize()
        else:
            result.load_avg_1m.append(load1())
        start = time.perf_counter()
        train_step(model, b, loss_fn, amp=amp_)
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.training.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for step in range(warmup + steps):
        idx = np.arange(step * batch, (step + 1) * batch)
        b = make_batch(split, idx, tokenizer.pad_token_id, device)
        seconds = one_step(b, amp)
        bf16 = one_step(b, bf16_amp) if cpu_bf16 else None
        if step >= warmup:
            step_seconds.append(seconds)
            tokens.append(int(b["attention_mask"].sum()))
            logger.info(
                "  train step %d/%d: %.3f s%s",
                step - warmup + 1,
                steps,
                seconds,
                f" (bf16 {bf16:.3f} s)" if bf16 else "",
            )
            if bf16 is not None:
                bf16_seconds.append(bf16)
    result.load_avg_1m.append(load1())
    if bf16_seconds:
        result.add(
            "cpu_bf16_samples_per_s",
            [batch / s for s in bf16_seconds],
            "samples/s",
            "the same batches under bf16 autocast (training.precision bf16), each right after its fp32 step",
        )
        result.add(
            "cpu_bf16_vs_fp32",
            float(np.median([a / b for a, b in zip(step_seconds, bf16_seconds, strict=True)])),
            "x",
            "median per-batch speed-up of bf16 autocast over fp32",
        )

    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    emb = sum(p.numel() for p in model.encoder.embeddings.parameters()) if hasattr(model.encoder, "embeddings") else 0
    result.add(
        "samples_per_s",
        [batch / s for s in step_seconds],
        "samples/s",
        f"batch {batch}, {seq} tokens, {device.type}, fine_tune={config.model.fine_tune}",
    )
    result.add(
        "tokens_per_s",
        [t / s for t, s in zip(tokens, step_seconds, strict=True)],
        "tokens/s",
        "non-pad tokens per second",
    )
    result.add("step_seconds", step_seconds, "s", "forward + backward + clip + AdamW step")
    result.info.update(
        {
            "device": device.type,
            "precision": "bf16 autocast" if cuda and config.training.bf16_on_gpu else "fp32",
            "batch_size": batch,
            "sequence_length": seq,
            "mean_tokens_per_sample": float(np.mean(tokens)) / batch,
            "warmup_steps": warmup,
            "timed_steps": steps,
            "params": params,
            "trainable_params": trainable,
            "non_embedding_params": params - emb,
            "encoder": config.model.encoder,
            "fine_tune": config.model.fine_tune,
            "torch_threads": torch.get_num_threads(),
            "loop": "pipelines.training.transformer.train_step + build_optimizer on synthetic ~128-token text views",
        }
    )
    if cuda:
        name = torch.cuda.get_device_name(0)
        peak = bf16_peak(name)
        result.info["gpu"] = name
        if peak:
            result.add(
                "bf16_peak_fraction",
                6 * params * result.metrics["tokens_per_s"].value / peak,
                "fraction",
                f"6 * {params:,} params * tokens/s over {peak / 1e12:.0f} TFLOP/s dense bf16 ({name})",
            )
    else:
        result.notes.append("CPU: samples/s only (the bf16 peak fraction is a GPU metric)")
    return result
