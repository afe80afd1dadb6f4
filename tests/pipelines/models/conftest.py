"""Training-speed settings for this package's tests (fixtures in tests/pipelines/conftest.py)."""

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    yield


@pytest.fixture
def tiny_config(tiny_training_config):
    return tiny_training_config
