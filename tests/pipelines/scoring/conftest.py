from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _standins():
    name = "churn_test_standins"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("standins.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def standins():
    return _standins()


@pytest.fixture
def tiny_config(backend_config, standins):
    """backend_config (DuckDB and Postgres) with a small generated warehouse loaded."""
    standins.load_tiny_warehouse(backend_config)
    return backend_config
