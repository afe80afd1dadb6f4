"""The transformer loop: learning, determinism, best-epoch restore, optimizer groups, schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipelines.models.metrics import pr_auc
from pipelines.training.transformer import (
    build_optimizer,
    encode_split,
    evaluate,
    linear_warmup_decay,
    train_transformer,
)
from tests.helpers.synthetic import FEATURES, make_sets


@pytest.fixture(scope="module")
def sets():
    return make_sets(n_train=240, n_val=120, n_test=60, seed=5, max_orders=4)


def _strip(history):
    return [{k: v for k, v in row.items() if k not in ("samples_per_s", "seconds")} for row in history]


@pytest.mark.training
def test_two_epochs_lower_training_loss(tiny_config, sets):
    calls = []
    run = train_transformer(
        tiny_config, sets.train, sets.validation, FEATURES, on_epoch_end=lambda epoch, m: calls.append((epoch, m))
    )
    losses = [row["train_loss"] for row in run.history]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert [c[0] for c in calls] == [1, 2]
    assert set(calls[0][1]) >= {"epoch", "train_loss", "val_loss", "val_pr_auc", "samples_per_s"}
    assert run.pos_weight == pytest.approx((1 - sets.train.churned.mean()) / sets.train.churned.mean())
    assert run.history[run.best_epoch - 1]["val_pr_auc"] > sets.validation.churned.mean()  # beats random


@pytest.mark.training
def test_same_seed_same_metrics(tiny_config, sets):
    cfg = tiny_config.with_overrides({"training": {"epochs": 1, "gradient_accumulation_steps": 2}})
    a = train_transformer(cfg, sets.train, sets.validation, FEATURES)
    b = train_transformer(cfg, sets.train, sets.validation, FEATURES)
    assert _strip(a.history) == _strip(b.history)
    np.testing.assert_array_equal(a.val_raw, b.val_raw)


@pytest.mark.training
def test_best_epoch_weights_are_restored(tiny_config, sets):
    cfg = tiny_config.with_overrides(
        {"training": {"epochs": 3, "early_stopping_patience": 1, "head_lr": 0.05, "encoder_lr": 0.01}}
    )
    run = train_transformer(cfg, sets.train, sets.validation, FEATURES)
    split = encode_split(run.tokenizer, sets.validation, run.scaler, cfg.model.max_length)
    _, scores = evaluate(
        run.model, split, torch.nn.BCEWithLogitsLoss(), batch_size=64, pad_id=0, device=torch.device("cpu")
    )
    assert pr_auc(split.labels.astype(int), scores) == pytest.approx(run.history[run.best_epoch - 1]["val_pr_auc"])
    np.testing.assert_allclose(scores, run.val_raw, atol=1e-6)


@pytest.mark.training
def test_cpu_bf16_autocast_trains_with_fp32_weights(tiny_config, sets):
    """training.precision bf16 on CPU: the loss still falls, weights stay fp32, scores differ from fp32 only a little."""
    cfg = tiny_config.with_overrides({"training": {"precision": "bf16"}})
    run = train_transformer(cfg, sets.train, sets.validation, FEATURES)
    fp32 = train_transformer(
        tiny_config.with_overrides({"training": {"precision": "fp32"}}), sets.train, sets.validation, FEATURES
    )
    losses = [row["train_loss"] for row in run.history]
    assert losses[1] < losses[0]
    assert all(p.dtype == torch.float32 for p in run.model.parameters())
    assert not np.array_equal(run.val_raw, fp32.val_raw)  # bf16 really ran
    assert np.max(np.abs(run.val_raw - fp32.val_raw)) < 0.1


def test_optimizer_groups_and_schedule(tiny_config):
    from pipelines.models import build_churn_model

    model = build_churn_model(tiny_config.model, len(FEATURES))
    opt = build_optimizer(model, tiny_config)
    groups = {g["name"]: g for g in opt.param_groups}
    assert groups["encoder.decay"]["lr"] == 1e-3 and groups["head.decay"]["lr"] == 3e-3
    assert groups["encoder.no_decay"]["weight_decay"] == 0.0 and groups["head.no_decay"]["weight_decay"] == 0.0
    assert all(p.ndim < 2 for p in groups["encoder.no_decay"]["params"])
    names = {id(p): n for n, p in model.named_parameters()}
    assert not any("pooler" in names[id(p)] for g in opt.param_groups for p in g["params"])

    sched = linear_warmup_decay(opt, warmup_steps=2, total_steps=10)
    factors = []
    for _ in range(10):
        factors.append(sched.get_last_lr()[0] / 1e-3)
        opt.step()
        sched.step()
    assert factors[0] == pytest.approx(0.5) and factors[1] == pytest.approx(1.0)
    assert factors == sorted(factors[:2]) + sorted(factors[2:], reverse=True)
    assert sched.get_last_lr()[0] == 0.0
