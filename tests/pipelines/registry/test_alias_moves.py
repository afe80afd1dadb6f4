"""Alias moves are serialised: concurrent promotions leave one consistent previous_champion chain."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from pipelines import tracking
from pipelines.registry import promote, rollback

NAME = "churn-risk"


@pytest.fixture(scope="module")
def registry_template(tmp_path_factory) -> Path:
    """A migrated store holding churn-risk versions 1..6, @champion on 1 (copied per test: migrations are slow)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("alias_template") / "mlflow.db"
    uri = f"sqlite:///{path}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(NAME)
    source = tmp_path_factory.mktemp("model_source")
    for _ in range(6):
        client.create_model_version(NAME, source=str(source))
    client.set_registered_model_alias(NAME, "champion", "1")
    return path


@pytest.fixture
def registry_config(config, registry_template, tmp_path, monkeypatch):
    monkeypatch.setattr(tracking, "_ready_stores", set())
    shutil.copy(registry_template, tmp_path / "registry.db")
    return config.with_overrides({"registry": {"tracking_uri": f"sqlite:///{tmp_path}/registry.db"}})


def _chain(client) -> list[str]:
    """@champion, then each version's previous_champion, back to the first champion."""
    version, chain = str(client.get_model_version_by_alias(NAME, "champion").version), []
    while version and version not in chain:
        chain.append(version)
        version = client.get_model_version(NAME, version).tags.get("previous_champion")
    return chain


def test_four_concurrent_promotions_record_one_consistent_chain(registry_config):
    barrier, errors = threading.Barrier(4), []

    def run(version: str) -> None:
        try:
            barrier.wait()
            promote(registry_config, version, reason=f"concurrent {version}")
        except Exception as exc:  # collected: asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(v,)) for v in ("2", "3", "4", "5")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    chain = _chain(tracking.client_for(registry_config))
    # every promotion is in the chain exactly once and it ends at the first champion: no lost update
    assert sorted(chain[:-1]) == ["2", "3", "4", "5"] and chain[-1] == "1"
    # and rollback walks it back one step at a time
    assert rollback(registry_config) == chain[1]


def test_an_alias_moved_between_read_and_write_is_detected_and_the_move_retried(registry_config, monkeypatch):
    """Without a lock (a tracking server), the compare-and-set re-reads the alias before moving it."""
    import contextlib

    from pipelines.registry import versions

    client = tracking.client_for(registry_config)
    monkeypatch.setattr(tracking, "store_lock", lambda config, purpose: contextlib.nullcontext())
    real_set_tags, moved = versions.set_version_tags, []

    def set_tags_then_interfere(c, name, version, tags):
        real_set_tags(c, name, version, tags)
        if not moved:  # another writer promotes 6 right after we read @champion = 1
            moved.append(True)
            c.set_model_version_tag(name, "6", "previous_champion", "1")
            c.set_registered_model_alias(name, "champion", "6")

    monkeypatch.setattr(versions, "set_version_tags", set_tags_then_interfere)
    result = promote(registry_config, "2")
    assert result["previous"] == "6"  # not the stale 1
    assert _chain(client) == ["2", "6", "1"]
