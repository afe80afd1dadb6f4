"""This package's tests run on the stand-in warehouse (fixtures in tests/pipelines/conftest.py)."""

import pytest


@pytest.fixture
def tiny_config(tiny_scoring_config):
    return tiny_scoring_config
