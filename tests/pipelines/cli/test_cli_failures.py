"""Every `churn` failure is one line (what, where, what to do) with a documented exit code; tracebacks only with --debug."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import main as cli
from pipelines.contract import ALL_TABLES, ExitCode

ROOT = Path(__file__).resolve().parents[3]
DEAD_URL = "postgresql://churn:s3cret-pw@127.0.0.1:1/analytics"  # nothing listens on port 1: refused at once
NAMED = "postgresql://churn@127.0.0.1:1/analytics"


def _errors(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "argv",
    [
        ["score", "--date", "2026-01-01"],
        ["init-warehouse"],
        ["build-training-sets", "--as-of", "2025-12-01"],
        ["monitor", "--date", "2026-01-01", "--no-mlflow"],
        ["import", "transactions", "orders.csv"],
    ],
    ids=lambda argv: argv[0],
)
def test_dead_warehouse_is_one_line_naming_the_url_without_password(argv, config, tmp_path, monkeypatch, caplog):
    (tmp_path / "orders.csv").write_text("customer_id,timestamp,amount\n1,2025-01-01,3.5\n")
    monkeypatch.chdir(tmp_path)
    config_path = tmp_path / "c.yaml"
    config_path.write_text(f"registry: {{tracking_uri: 'sqlite:///{tmp_path}/mlflow.db'}}\n")
    monkeypatch.setenv("CHURN_WAREHOUSE_URL", DEAD_URL)
    with caplog.at_level(logging.INFO):
        code = cli.main(["--config", str(config_path), *argv])
    assert code == ExitCode.WAREHOUSE
    (error,) = _errors(caplog)
    message = error.getMessage()
    assert message.startswith(f"churn {argv[0]}: warehouse unreachable: cannot connect to {NAMED} (")
    assert "CHURN_WAREHOUSE_URL" in message and "\n" not in message
    assert "s3cret" not in caplog.text and error.exc_info is None
    assert not (tmp_path / "mlflow.db").exists()  # score checked the warehouse before touching the registry


def test_unopenable_duckdb_file_is_one_line(config, tmp_path, caplog):
    (tmp_path / "a_file").write_text("not a folder")
    config_path = tmp_path / "c.yaml"
    config_path.write_text(f"warehouse: {{url: 'duckdb:///{tmp_path}/a_file/wh.duckdb'}}\n")
    with caplog.at_level(logging.INFO):
        assert cli.main(["--config", str(config_path), "init-warehouse"]) == ExitCode.WAREHOUSE
    (error,) = _errors(caplog)
    assert f"cannot open DuckDB file {tmp_path}/a_file/wh.duckdb" in error.getMessage()


def test_an_unexpected_error_is_one_line_and_its_traceback_needs_debug(tmp_path, monkeypatch, caplog):
    from pipelines.cli import data_commands

    def broken(config, args):
        raise KeyError("boom\nsecond line")

    monkeypatch.setattr(data_commands, "init_warehouse", broken)
    monkeypatch.setenv("CHURN_WAREHOUSE_URL", f"duckdb:///{tmp_path}/wh.duckdb")
    with caplog.at_level(logging.DEBUG):
        assert cli.main(["init-warehouse"]) == ExitCode.FAILED
    (error,) = _errors(caplog)
    assert error.getMessage() == (
        "churn init-warehouse: unexpected KeyError: 'boom\\nsecond line' (rerun with --debug for the traceback)"
    )
    assert not [r for r in caplog.records if r.exc_info]
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        assert cli.main(["--debug", "init-warehouse"]) == ExitCode.FAILED
    assert [r for r in caplog.records if r.exc_info and r.exc_info[0] is KeyError]


def test_real_process_prints_one_error_line_and_no_traceback_unless_debug(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURN_", "MLFLOW_"))}
    env.update(PYTHONPATH=str(ROOT), CHURN_WAREHOUSE_URL=DEAD_URL)
    command = [sys.executable, "-m", "pipelines.cli", "init-warehouse"]
    plain = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert plain.returncode == ExitCode.WAREHOUSE
    errors = [line for line in plain.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and NAMED in errors[0], plain.stderr
    assert "Traceback" not in plain.stderr and "s3cret" not in plain.stderr
    debug = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "--debug", "init-warehouse"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert debug.returncode == ExitCode.WAREHOUSE and "Traceback" in debug.stderr


def _drift(wh, kind: str) -> None:
    if kind == "dropped":
        wh.execute(f"ALTER TABLE {wh.qualified('orders')} DROP COLUMN status")
    elif kind == "renamed":
        wh.execute(f"ALTER TABLE {wh.qualified('orders')} RENAME COLUMN total_amount TO order_total")
    elif kind == "retyped":
        wh.execute(
            f"ALTER TABLE {wh.qualified('orders')} ALTER COLUMN total_amount TYPE VARCHAR "
            "USING CAST(total_amount AS VARCHAR)"
        )
    else:
        wh.execute(f"DROP TABLE {wh.qualified('reviews')}")


EXPECTED = {
    "dropped": "orders.status: column missing (expected TEXT)",
    "renamed": "orders.total_amount: column missing (expected DOUBLE PRECISION), found order_total instead (renamed?)",
    "retyped": "orders.total_amount: type {varchar}, expected DOUBLE PRECISION",
    "missing table": "table reviews is missing (run `churn init-warehouse`, then load data)",
}


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_score_on_a_drifted_raw_table_names_table_and_column_before_any_query(
    kind, backend_config, tmp_path, monkeypatch, caplog
):
    from pipelines.warehouse import open_warehouse

    with open_warehouse(backend_config) as wh:
        wh.init_schema()
        wh.check_contract(ALL_TABLES)  # a fresh schema matches the contract on both engines
        _drift(wh, kind)
        varchar = "CHARACTER VARYING" if wh.dialect == "postgresql" else "VARCHAR"
    config_path = tmp_path / "drift.yaml"
    config_path.write_text(backend_config.model_dump_json())
    monkeypatch.setenv("CHURN_WAREHOUSE_URL", backend_config.warehouse_url)
    if backend_config.warehouse_schema:
        monkeypatch.setenv("CHURN_WAREHOUSE_SCHEMA", backend_config.warehouse_schema)
    with caplog.at_level(logging.INFO):
        code = cli.main(["--config", str(config_path), "score", "--date", "2026-01-01", "--model-version", "1"])
    assert code == ExitCode.WAREHOUSE
    (error,) = _errors(caplog)
    message = error.getMessage()
    assert message.startswith("churn score: warehouse tables do not match the contract (")
    assert EXPECTED[kind].format(varchar=varchar) in message
    assert "Binder" not in message and "pipelines/contract.py" in message
    assert not Path(backend_config.tracking_uri.removeprefix("sqlite:///")).exists()  # the registry was not asked


def test_an_unreadable_or_unwritable_path_is_one_line_with_the_file_exit_code(tmp_path, monkeypatch, caplog):
    from pipelines.cli import data_commands

    def denied(config, args):
        raise PermissionError(13, "Permission denied", "/srv/reports/drift")

    monkeypatch.setattr(data_commands, "init_warehouse", denied)
    monkeypatch.setenv("CHURN_WAREHOUSE_URL", f"duckdb:///{tmp_path}/wh.duckdb")
    with caplog.at_level(logging.INFO):
        assert cli.main(["init-warehouse"]) == ExitCode.FILE
    (error,) = _errors(caplog)
    assert error.getMessage() == (
        "churn init-warehouse: cannot access /srv/reports/drift: Permission denied (check the path and its permissions)"
    )
