"""A config that trains the tiny random-init encoder quickly; torch on one thread (2 shared cores)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_config(config, tiny_encoder_dir):
    return config.with_overrides({
        "model": {"encoder": tiny_encoder_dir, "max_length": 48, "head_hidden": [16], "dropout": 0.0},
        "training": {"epochs": 2, "batch_size": 16, "eval_batch_size": 64, "num_threads": 1, "encoder_lr": 1e-3,
                     "head_lr": 3e-3, "early_stopping_patience": 2, "baseline_rounds": 60},
    })
