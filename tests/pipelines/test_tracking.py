"""MLflow plumbing under faults: bounded failures naming the URI, one store per config, one creator of a store."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from pipelines import tracking
from pipelines.contract import ExitCode
from pipelines.tracking import RegistryUnavailableError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_budget(monkeypatch):
    """As if no budget variable had been exported and no store opened in this process."""
    for name in tracking.HTTP_BUDGET_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tracking, "_user_http_env", None)
    monkeypatch.setattr(tracking, "_ready_stores", set())


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory) -> Path:
    """An MLflow SQLite store created once (its migrations take seconds); tests copy the file."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow_template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}", registry_uri=f"sqlite:///{path}").search_registered_models()
    return path


def _store(migrated_store: Path, target: Path) -> str:
    shutil.copy(migrated_store, target)
    return f"sqlite:///{target}"


@pytest.fixture
def hanging_up_server():
    """A TCP server that accepts each connection and closes it at once; counts the attempts."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    attempts = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            attempts.append(1)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], attempts
    server.close()


def test_an_unreachable_server_fails_after_the_retry_budget_naming_the_uri(
    config, fresh_budget, hanging_up_server, monkeypatch
):
    port, attempts = hanging_up_server
    uri = f"http://ops:pa55word@127.0.0.1:{port}"
    cfg = config.with_overrides({"registry": {"tracking_uri": uri, "max_retries": 2, "retry_backoff_seconds": 0}})
    with pytest.raises(RegistryUnavailableError) as info:
        tracking.client_for(cfg)
    message = str(info.value)
    assert message.startswith(f"MLflow registry unreachable at http://ops@127.0.0.1:{port}: 3 attempt(s) in ")
    assert "pa55word" not in message and "MLFLOW_TRACKING_URI" in message
    assert len(attempts) == 3  # 1 try + max_retries, then it stops
    assert info.value.exit_code == ExitCode.REGISTRY
    # MLflow's own client got the same budget (it would otherwise retry for minutes)
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "0"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "30"


def test_a_tls_server_with_a_private_certificate_counts_as_reachable(config, monkeypatch):
    import requests

    def self_signed(url, timeout):
        raise requests.exceptions.SSLError("certificate verify failed: self-signed certificate")

    monkeypatch.setattr(requests, "get", self_signed)
    tracking.check_reachable(config.with_overrides({"registry": {"tracking_uri": "https://mlflow.internal"}}))


def test_a_budget_the_operator_exported_wins_over_the_config(config, fresh_budget, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")
    tracking.apply_http_budget(config.with_overrides({"registry": {"max_retries": 1}}))
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "7"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "30"


def test_cli_with_the_registry_down_is_one_line_with_the_registry_exit_code(
    config, fresh_budget, hanging_up_server, monkeypatch, caplog, tmp_path
):
    import logging

    from pipelines.cli.main import main

    port, _ = hanging_up_server
    config_path = tmp_path / "c.yaml"
    config_path.write_text(f"registry: {{tracking_uri: 'http://127.0.0.1:{port}', retry_backoff_seconds: 0}}\n")
    with caplog.at_level(logging.INFO):
        assert main(["--config", str(config_path), "models"]) == ExitCode.REGISTRY
    (error,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.getMessage().startswith(f"churn models: MLflow registry unreachable at http://127.0.0.1:{port}: ")


def test_two_configs_in_one_process_each_reach_their_own_store(config, fresh_budget, tmp_path, migrated_store):
    import mlflow

    first = config.with_overrides({"registry": {"tracking_uri": _store(migrated_store, tmp_path / "first.db")}})
    second = config.with_overrides({"registry": {"tracking_uri": _store(migrated_store, tmp_path / "second.db")}})
    with tracking.use_tracking(first) as client:
        experiment = tracking.ensure_experiment(first, client)
        with mlflow.start_run(experiment_id=experiment, run_name="only-in-first"):
            mlflow.log_metric("m", 1.0)
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    assert second.tracking_uri == f"sqlite:///{tmp_path}/second.db"  # not the first config's store
    other = tracking.client_for(second)
    assert [e.name for e in other.search_experiments()] == ["Default"]
    runs = tracking.client_for(first).search_runs([experiment])
    assert [r.info.run_name for r in runs] == ["only-in-first"]


def test_a_moved_checkout_reads_its_own_artifacts_not_the_old_folder(config, fresh_budget, tmp_path, migrated_store):
    """MLflow stores artifact URIs absolute; after a move the store is pointed at the checkout's own folder."""
    import mlflow

    old, new = tmp_path / "old-checkout", tmp_path / "new-checkout"
    (old / "mlflow").mkdir(parents=True)
    before = config.with_overrides(
        {
            "registry": {
                "tracking_uri": _store(migrated_store, old / "mlflow" / "mlflow.db"),
                "artifact_location": str(old / "mlflow" / "artifacts"),  # what resolve_path gives in that checkout
            }
        }
    )
    with tracking.use_tracking(before) as client:
        experiment = tracking.ensure_experiment(before, client)
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_text("from the old checkout", "note.txt")
        client.create_registered_model("moved")
        version = client.create_model_version(
            "moved", source=f"{run.info.artifact_uri}/note.txt", run_id=run.info.run_id
        )
    assert run.info.artifact_uri.startswith((old / "mlflow" / "artifacts").as_uri())  # MLflow: absolute

    shutil.move(old, new)
    (old / "mlflow" / "artifacts").mkdir(parents=True)  # a stale folder at the old place must not be read
    after = config.with_overrides(
        {"registry": {"tracking_uri": f"sqlite:///{new}/mlflow/mlflow.db", "artifact_location": "mlflow/artifacts"}}
    )
    assert tracking.relocate_artifact_uris(after, root=tmp_path / "elsewhere") == 0  # store not in that checkout
    assert tracking.relocate_artifact_uris(after, root=new) == 4  # experiment, run, version source + storage
    assert tracking.relocate_artifact_uris(after, root=new) == 0  # idempotent
    client = mlflow.MlflowClient(tracking_uri=after.tracking_uri, registry_uri=after.tracking_uri)
    moved = client.get_run(run.info.run_id).info.artifact_uri
    assert moved == f"{(new / 'mlflow' / 'artifacts').as_uri()}/{run.info.run_id}/artifacts"
    path = client.download_artifacts(run.info.run_id, "note.txt", str(tmp_path))
    assert Path(path).read_text() == "from the old checkout"
    assert client.get_model_version(version.name, version.version).source.startswith(new.as_uri())
    import sqlite3

    with contextlib.closing(sqlite3.connect(new / "mlflow" / "mlflow.db")) as conn:
        for table, column in tracking.ARTIFACT_URI_COLUMNS:
            values = [v for (v,) in conn.execute(f"SELECT {column} FROM {table}") if v]
            assert not [v for v in values if str(old) in v], (table, column)


def test_use_tracking_restores_an_exported_tracking_uri(config, fresh_budget, monkeypatch, tmp_path, migrated_store):
    import mlflow

    operator = _store(migrated_store, tmp_path / "operator.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", operator)
    ours = config.with_overrides({"registry": {"tracking_uri": _store(migrated_store, tmp_path / "ours.db")}})
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with tracking.use_tracking(ours):
        assert mlflow.get_tracking_uri() == ours.tracking_uri
    assert "MLFLOW_TRACKING_URI" not in os.environ
    monkeypatch.setenv("MLFLOW_TRACKING_URI", operator)
    with tracking.use_tracking(config):  # the exported URI wins for the config, and is left exported
        assert mlflow.get_tracking_uri() == operator
    assert os.environ["MLFLOW_TRACKING_URI"] == operator


OPEN_STORE = textwrap.dedent(
    """
    import sys
    from pipelines.config import Config
    from pipelines.tracking import client_for

    config = Config().with_overrides({"registry": {"tracking_uri": sys.argv[1]}})
    client_for(config).search_registered_models(max_results=1)
    print("ok")
    """
)


@pytest.mark.slow  # four fresh MLflow migrations at once: about a minute on two shared cores
def test_a_fresh_sqlite_store_opened_by_four_processes_at_once_is_created_once(tmp_path):
    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CHURN_"))}
    env["PYTHONPATH"] = str(ROOT)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_STORE, uri], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for _ in range(4)
    ]
    results = [proc.communicate(timeout=300) for proc in procs]
    failures = [err[-1500:] for proc, (_, err) in zip(procs, results, strict=True) if proc.returncode != 0]
    assert failures == []  # before the lock: 3 of 4 died with "duplicate column name: step"
