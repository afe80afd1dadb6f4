"""A writer killed at any stage of a partition replace leaves the old day intact and nothing behind for long.

The writer runs in a child process that SIGKILLs itself at an injected fault point (no cleanup handler can
run: this is the `kill -9` / OOM-killer case); the test then checks the old day, that the next write of any
day sweeps what the child left, and that rerunning the killed write gives the same rows as a clean write.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipelines.contract import CHURN_SCORES
from pipelines.warehouse import base, connect
from pipelines.warehouse.postgres_backend import staging_name

D1, D2, D3 = dt.date(2025, 1, 1), dt.date(2025, 1, 2), dt.date(2025, 1, 3)
ROOT = Path(__file__).resolve().parents[3]

# The killed writer: replaces D1 with 7 rows of probability 0.9 and SIGKILLs itself at STAGE.
CHILD = textwrap.dedent(
    """
    import datetime as dt, os, signal, sys
    import pandas as pd
    from pipelines.warehouse import base, connect

    url, schema, stage = sys.argv[1], sys.argv[2] or None, sys.argv[3]

    def hook(at):
        if at == stage:
            os.kill(os.getpid(), signal.SIGKILL)

    base.fault_hook = hook
    frame = pd.DataFrame({
        "customer_id": range(7), "score_date": dt.date(2025, 1, 1), "churn_probability": 0.9,
        "risk_tier": "high", "model_name": "churn-risk", "model_version": "2", "run_id": "killed-run",
        "scored_at": pd.Timestamp("2025-01-01", tz="UTC"),
    })
    with connect(url, schema) as wh:
        if wh.dialect == "postgresql":
            print(wh.scalar("SELECT pg_backend_pid()"), flush=True)
        wh.replace_partition("churn_scores", frame, "score_date", dt.date(2025, 1, 1))
    print("not killed", flush=True)
    """
)


def _kill_writer_at(stage: str, url: str, schema: str | None) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, url, schema or "", stage],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == -9, f"writer was not killed at {stage}: rc {proc.returncode}\n{proc.stderr[-2000:]}"
    return proc.stdout.strip()


def _wait_for_backend_gone(wh, pid: str) -> None:
    """The server rolls the dead session back once it notices the socket closed (bounded wait)."""
    for _ in range(300):
        if not wh.scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = :pid", {"pid": int(pid)}):
            return
        time.sleep(0.1)
    raise AssertionError(f"backend {pid} of the killed writer is still alive")


def _rows(wh, day) -> list[tuple]:
    frame = wh.query_df(
        wh.render(
            "SELECT customer_id, churn_probability, model_version, run_id FROM {churn_scores} "
            "WHERE score_date = :d ORDER BY customer_id"
        ),
        {"d": day},
    )
    return list(frame.itertuples(index=False, name=None))


def _staging_tables(wh) -> dict[str, str | None]:
    if wh.dialect != "postgresql":
        names = wh.query_arrow(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = :s", {"s": wh.schema}
        ).column(0)
        return {n: None for n in names.to_pylist() if n.startswith("churn_scores_") and n != "churn_scores_latest"}
    rows = wh.query_arrow(
        "SELECT c.relname, obj_description(c.oid, 'pg_class') AS comment FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s AND c.relkind = 'r' AND c.relname LIKE '%\\_\\_load%'",
        {"s": wh.schema},
    ).to_pylist()
    return {r["relname"]: r["comment"] for r in rows}


def _stages(url: str) -> list[str]:
    # DuckDB replaces by delete + insert in one transaction: there is no separate key build.
    return list(base.FAULT_STAGES) if url.startswith("postgresql") else ["load", "swap"]


@pytest.mark.parametrize("stage", base.FAULT_STAGES)
def test_writer_killed_at_each_stage_leaves_the_old_day_and_no_orphan_after_the_next_write(
    stage, warehouse_url_and_schema, scores
):
    url, schema = warehouse_url_and_schema
    if stage not in _stages(url):
        pytest.skip(f"{stage}: not a stage of the DuckDB replace")
    postgres = url.startswith("postgresql")
    with connect(url, schema) as wh:
        wh.init_schema()
        wh.replace_partition(CHURN_SCORES, scores(D1, range(10), prob=0.5), "score_date", D1)
        old = _rows(wh, D1)
    if not postgres:  # DuckDB allows one writing process per file: the test's connection is closed meanwhile
        _kill_writer_at(stage, url, schema)
    with connect(url, schema, staging_grace_seconds=0) as wh:
        if postgres:
            _wait_for_backend_gone(wh, _kill_writer_at(stage, url, schema))
        assert _rows(wh, D1) == old  # the old day, untouched
        left = _staging_tables(wh)
        if postgres and stage != "load":  # its load had committed: the staging table outlived the writer
            (name, comment), *_ = left.items()
            assert len(left) == 1 and "__load20250101_" in name
            assert '"run_id": "killed-run"' in comment and '"pid": ' in comment  # who left it, and when
        else:  # killed inside a transaction: the engine rolled it back, table and all
            assert not left
        wh.replace_partition(CHURN_SCORES, scores(D2, range(3)), "score_date", D2)  # another day's write sweeps
        assert not _staging_tables(wh)
        assert _rows(wh, D1) == old
        # rerun of the killed write: the same rows as a clean write, still nothing left behind
        rerun = scores(D1, range(7), prob=0.9, version="2").assign(run_id="killed-run", risk_tier="high")
        wh.replace_partition(CHURN_SCORES, rerun, "score_date", D1)
        assert _rows(wh, D1) == [(i, 0.9, "2", "killed-run") for i in range(7)]
        assert not _staging_tables(wh)


@pytest.mark.parametrize("stage", base.FAULT_STAGES)
def test_a_failure_raised_at_each_stage_keeps_the_old_day_and_drops_the_staging_table(
    stage, warehouse, scores, monkeypatch
):
    wh = warehouse
    wh.replace_partition(CHURN_SCORES, scores(D1, range(10), prob=0.5), "score_date", D1)
    old = _rows(wh, D1)
    fired = []

    def hook(at):
        if at == stage:
            fired.append(at)
            raise RuntimeError(f"injected at {at}")

    monkeypatch.setattr(base, "fault_hook", hook)
    if stage in _stages(wh.dialect):
        with pytest.raises(RuntimeError, match="injected"):
            wh.replace_partition(CHURN_SCORES, scores(D1, range(4), prob=0.9), "score_date", D1)
        assert fired == [stage]
    monkeypatch.setattr(base, "fault_hook", None)
    assert _rows(wh, D1) == old
    assert not _staging_tables(wh)


@pytest.mark.postgres
def test_orphans_are_swept_only_when_stale_and_their_day_is_not_being_written(postgres_url, postgres_schema, scores):
    with connect(postgres_url, postgres_schema) as wh:
        wh.init_schema()
        stale = staging_name("churn_scores", D2, int(time.time()) - 3600, "aaaaaa")
        young = staging_name("churn_scores", D3, int(time.time()), "bbbbbb")
        busy = staging_name("churn_scores", dt.date(2025, 1, 4), int(time.time()) - 3600, "cccccc")
        for name in (stale, young, busy):
            wh.execute(f"CREATE TABLE {wh.qualified(name)} (LIKE {wh.qualified('churn_scores')})")
        wh.execute(f"CREATE TABLE {wh.qualified('churn_scores__load20250104_x')} (junk int)")  # not ours: kept
        with connect(postgres_url, postgres_schema) as writer:  # a live writer of 2025-01-04 holds its day's lock
            writer.execute(
                "SELECT pg_advisory_lock(hashtextextended(:key, 0))", {"key": f"{wh.schema}.churn_scores.2025-01-04"}
            )
            wh.replace_partition(CHURN_SCORES, scores(D1, range(3)), "score_date", D1)
            assert set(_staging_tables(wh)) == {young, busy, "churn_scores__load20250104_x"}
        # init-warehouse sweeps too; the busy day's writer has gone
        wh.init_schema()
        assert set(_staging_tables(wh)) == {young, "churn_scores__load20250104_x"}
    with connect(postgres_url, postgres_schema, staging_grace_seconds=0) as wh:
        wh.init_schema()
        assert set(_staging_tables(wh)) == {"churn_scores__load20250104_x"}


@pytest.mark.postgres
def test_cli_init_warehouse_sweeps_orphans(postgres_url, postgres_schema, monkeypatch):
    from pipelines.cli.main import main

    with connect(postgres_url, postgres_schema) as wh:
        wh.init_schema()
        orphan = staging_name("churn_scores", D1, int(time.time()) - 86_400, "dddddd")
        wh.execute(f"CREATE TABLE {wh.qualified(orphan)} (LIKE {wh.qualified('churn_scores')})")
        monkeypatch.setenv("CHURN_WAREHOUSE_URL", postgres_url)
        monkeypatch.setenv("CHURN_WAREHOUSE_SCHEMA", postgres_schema)
        assert main(["init-warehouse"]) == 0
        assert not _staging_tables(wh)
