"""Fixtures shared by several packages' tests: a fast training config and the scoring stand-ins."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


@pytest.fixture
def one_torch_thread():
    """torch on one thread: the machine's 2 cores are shared with the rest of the suite."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_training_config(config, tiny_encoder_dir):
    """Trains the tiny random-init encoder in seconds."""
    return config.with_overrides(
        {
            "model": {"encoder": tiny_encoder_dir, "max_length": 48, "head_hidden": [16], "dropout": 0.0},
            "training": {
                "epochs": 2,
                "batch_size": 16,
                "eval_batch_size": 64,
                "num_threads": 1,
                "encoder_lr": 1e-3,
                "head_lr": 3e-3,
                "early_stopping_patience": 2,
                "baseline_rounds": 60,
            },
        }
    )


def _load_standins():
    name = "churn_test_standins"
    if name not in sys.modules:
        path = Path(__file__).parent / "scoring" / "standins.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def standins():
    """The labelled stand-in predictor and tiny-warehouse helpers (tests/pipelines/scoring/standins.py)."""
    return _load_standins()


@pytest.fixture
def tiny_scoring_config(backend_config, standins):
    """backend_config (DuckDB and Postgres) with a small generated warehouse loaded."""
    standins.load_tiny_warehouse(backend_config)
    return backend_config
