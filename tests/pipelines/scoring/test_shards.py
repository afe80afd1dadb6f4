"""Sharded scoring: shards staged then published give the unsharded day exactly; a failed shard publishes nothing.

Real features and warehouses (DuckDB and Postgres via ``tiny_config``); the model is the labelled stand-in.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipelines.config import Config
from pipelines.features import build_features, numeric_feature_names
from pipelines.scoring import score_customers
from pipelines.scoring.shards import STAGING_TABLES, ShardError, plan_shards, publish_shards, score_shard
from pipelines.warehouse import open_warehouse

RUN = "manual__sharded"
VOLATILE = ["scored_at", "run_id"]  # when and by which run; every other value must match


@pytest.fixture(scope="module")
def lgbm_predictor():
    """A small real LightGBM bundle's predictor, so reasons are written (the formula stand-in has no attribution)."""
    import lightgbm as lgb

    from pipelines.models import BaselinePredictor, Calibrator

    names = numeric_feature_names(Config())
    rng = np.random.default_rng(0)
    x = pd.DataFrame({f: rng.gamma(2.0, 2.0, 600) for f in names})
    x["days_since_last_order"] = rng.exponential(30, 600)
    y = (rng.random(600) < 1 / (1 + np.exp(-(-1.5 + 0.05 * (x["days_since_last_order"] - 30))))).astype(int)
    params = {"objective": "binary", "num_leaves": 7, "verbose": -1, "seed": 0, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(x[names].to_numpy(), y), num_boost_round=15)
    return BaselinePredictor(booster, names, Calibrator("identity"))


@pytest.fixture
def real_model(tiny_config, standins, monkeypatch, lgbm_predictor):
    """The LightGBM predictor and a segment model for version 3: every output table gets rows."""
    import pipelines.scoring.segments as scoring_segments
    from pipelines.models.segments import fit_segments

    with open_warehouse(tiny_config) as wh:
        fit = build_features(wh, tiny_config, [standins.SCORE_DATE - dt.timedelta(days=60)], labels=False)
    model = fit_segments(fit, lgbm_predictor.feature_names, n_segments=3, seed=0)
    monkeypatch.setattr(scoring_segments, "segment_model_for", lambda config, version: model)
    standins.install_standin(monkeypatch, lgbm_predictor)
    return lgbm_predictor


def _day(config, day) -> dict[str, pd.DataFrame]:
    with open_warehouse(config) as wh:
        out = {}
        for name, order in (
            ("churn_scores", "customer_id"),
            ("churn_score_reasons", "customer_id, rank"),
            ("customer_segments", "customer_id"),
        ):
            frame = wh.query_df(
                wh.render(f"SELECT * FROM {{{name}}} WHERE score_date = :d ORDER BY {order}"), {"d": day}
            )
            out[name] = frame.drop(columns=[c for c in VOLATILE if c in frame.columns]).reset_index(drop=True)
        return out


def _staged_rows(config) -> int:
    with open_warehouse(config) as wh:
        return sum(wh.row_count(t.name) for t in STAGING_TABLES)


def _sharded(config, standins, shards=3):
    per = -(-_population(config, standins) // shards)
    return config.with_overrides({"scoring": {"shard_customers": per, "chunk_rows": 29}})


def _population(config, standins) -> int:
    from pipelines.scoring import population_count

    with open_warehouse(config) as wh:
        return population_count(wh, config, standins.SCORE_DATE)


def _assert_same_day(actual, expected):
    for name in expected:
        pd.testing.assert_frame_equal(actual[name], expected[name], check_dtype=False, obj=name)


def test_plan_covers_the_population_in_disjoint_ranges(tiny_config, standins):
    config = _sharded(tiny_config, standins, shards=3)
    plan = plan_shards(config, standins.SCORE_DATE)
    assert [s["shard"] for s in plan] == [0, 1, 2]
    assert sum(s["customers"] for s in plan) == _population(config, standins)
    assert all(a["id_hi"] < b["id_lo"] for a, b in zip(plan, plan[1:], strict=False))
    # the default shard size puts the demo's population in one shard
    assert len(plan_shards(tiny_config, standins.SCORE_DATE)) == 1


def test_sharded_run_equals_unsharded_run(tiny_config, standins, real_model):
    score_customers(tiny_config, standins.SCORE_DATE, "3", "manual__single")
    expected = _day(tiny_config, standins.SCORE_DATE)
    assert len(expected["churn_scores"]) > 50
    assert len(expected["churn_score_reasons"]) > 0 and len(expected["customer_segments"]) > 0

    config = _sharded(tiny_config, standins, shards=3)
    plan = plan_shards(config, standins.SCORE_DATE)
    for shard in plan:
        result = score_shard(config, standins.SCORE_DATE, "3", RUN, shard)
        assert result["rows"] == shard["customers"]
    published = publish_shards(config, standins.SCORE_DATE, RUN, plan)

    assert published["rows"] == len(expected["churn_scores"]) and published["shards"] == 3
    _assert_same_day(_day(config, standins.SCORE_DATE), expected)
    assert _staged_rows(config) == 0  # publish clears the run's staging


def test_failed_shard_publishes_nothing_until_rerun(tiny_config, standins, monkeypatch, real_model):
    score_customers(tiny_config, standins.SCORE_DATE, "3", "manual__old")
    old = _day(tiny_config, standins.SCORE_DATE)

    config = _sharded(tiny_config, standins, shards=2)
    plan = plan_shards(config, standins.SCORE_DATE)
    score_shard(config, standins.SCORE_DATE, "3", RUN, plan[0])

    calls = {"n": 0}
    predict = real_model.predict_proba

    def dies_midway(frame):
        calls["n"] += 1
        if calls["n"] == 2:  # after the first slice of the shard was scored
            raise RuntimeError("worker lost")
        return predict(frame)

    monkeypatch.setattr(real_model, "predict_proba", dies_midway)
    with pytest.raises(RuntimeError, match="worker lost"):
        score_shard(config.with_overrides({"scoring": {"chunk_rows": 5}}), standins.SCORE_DATE, "3", RUN, plan[1])
    with pytest.raises(ShardError, match=r"shard\(s\) \[1\] of 2 did not finish"):
        publish_shards(config, standins.SCORE_DATE, RUN, plan)
    _assert_same_day(_day(config, standins.SCORE_DATE), old)  # the old day intact

    monkeypatch.setattr(real_model, "predict_proba", predict)  # the retry: shard 1, then shard 0 again (own rows)
    score_shard(config, standins.SCORE_DATE, "3", RUN, plan[1])
    score_shard(config, standins.SCORE_DATE, "3", RUN, plan[0])
    publish_shards(config, standins.SCORE_DATE, RUN, plan)
    _assert_same_day(_day(config, standins.SCORE_DATE), old)  # same model, same data: the complete day again
    with open_warehouse(config) as wh:
        assert wh.row_count("churn_scores", "score_date = :d", {"d": standins.SCORE_DATE}) == sum(
            s["customers"] for s in plan
        )


def test_shard_killed_while_staging_stages_nothing(tiny_config, standins, monkeypatch):
    """A fault after the first staging table was loaded rolls the whole shard back: publish sees it missing."""
    import pipelines.warehouse.base as base

    standins.install_standin(monkeypatch)
    config = _sharded(tiny_config, standins, shards=2)
    plan = plan_shards(config, standins.SCORE_DATE)
    score_shard(config, standins.SCORE_DATE, "3", RUN, plan[0])
    staged = _staged_rows(config)

    def crash(stage):
        raise RuntimeError(f"killed at {stage}")

    monkeypatch.setattr(base, "fault_hook", crash)
    with pytest.raises(RuntimeError, match="killed at load"):
        score_shard(config, standins.SCORE_DATE, "3", RUN, plan[1])
    monkeypatch.setattr(base, "fault_hook", None)
    assert _staged_rows(config) == staged  # shard 0 untouched, nothing of shard 1
    with pytest.raises(ShardError, match=r"shard\(s\) \[1\] of 2 did not finish"):
        publish_shards(config, standins.SCORE_DATE, RUN, plan)


def test_publish_refuses_missing_or_unplanned_shards(tiny_config, standins, monkeypatch):
    standins.install_standin(monkeypatch)
    config = _sharded(tiny_config, standins, shards=2)
    plan = plan_shards(config, standins.SCORE_DATE)
    score_shard(config, standins.SCORE_DATE, "3", RUN, plan[1])
    with pytest.raises(ShardError, match=r"shard\(s\) \[0\] of 2 did not finish"):
        publish_shards(config, standins.SCORE_DATE, RUN, plan)
    score_shard(config, standins.SCORE_DATE, "3", RUN, plan[0])
    with pytest.raises(ShardError, match="not in the plan"):
        publish_shards(config, standins.SCORE_DATE, RUN, plan[:1])  # shard 1 staged but not planned
    wrong = [plan[0], dict(plan[1], customers=plan[1]["customers"] + 1)]
    with pytest.raises(ShardError, match="shard 1 staged"):
        publish_shards(config, standins.SCORE_DATE, RUN, wrong)
    with pytest.raises(ShardError, match="no shard planned"):
        publish_shards(config, standins.SCORE_DATE, RUN, [])
    with open_warehouse(config) as wh:
        assert wh.row_count("churn_scores", "score_date = :d", {"d": standins.SCORE_DATE}) == 0


def _staged_runs(config) -> set[tuple[str, dt.date]]:
    with open_warehouse(config) as wh:
        rows = wh.query_arrow(
            f"SELECT DISTINCT stage_run, score_date FROM {wh.qualified('churn_score_shards')}"
        ).to_pylist()
        staged = {
            (r["stage_run"], r["score_date"])
            for r in wh.query_arrow(
                f"SELECT DISTINCT stage_run, score_date FROM {wh.qualified('churn_scores_staging')}"
            ).to_pylist()
        }
    assert {(r["stage_run"], r["score_date"]) for r in rows} == staged  # manifest and rows go together
    return staged


def test_publish_sweeps_a_failed_runs_staging_of_that_day_and_old_staging(tiny_config, standins, monkeypatch):
    """A failed run's staging goes when a later run publishes its day, or once older than the retention."""
    from pipelines.scoring.shards import sweep_staging

    standins.install_standin(monkeypatch)
    config = _sharded(tiny_config, standins, shards=2)
    day, other_day = standins.SCORE_DATE, standins.SCORE_DATE - dt.timedelta(days=7)
    plan, other_plan = plan_shards(config, day), plan_shards(config, other_day)
    score_shard(config, day, "3", "failed__run", plan[0])  # its shard 1 never finished: never published
    score_shard(config, other_day, "3", "failed__other_day", other_plan[0])

    for shard in plan:
        score_shard(config, day, "3", RUN, shard)
    published = publish_shards(config, day, RUN, plan)
    assert published["swept_runs"] == 1
    assert _staged_runs(config) == {("failed__other_day", other_day)}  # another day, fresh: kept

    with open_warehouse(config) as wh:
        now = dt.datetime.now(dt.UTC)
        assert sweep_staging(wh, dt.timedelta(days=3), now=now) == []
        swept = sweep_staging(wh, dt.timedelta(days=3), now=now + dt.timedelta(days=3, minutes=1))
    assert [(s["stage_run"], s["score_date"], s["rows"]) for s in swept] == [
        ("failed__other_day", other_day, other_plan[0]["customers"])
    ]
    assert _staged_rows(config) == 0
    with open_warehouse(config) as wh:  # the published day is not staging: untouched
        assert wh.row_count("churn_scores", "score_date = :d", {"d": day}) == published["rows"]


def test_sweep_staging_command_removes_a_named_run_only(tiny_config, standins, monkeypatch, tmp_path):
    import yaml

    from pipelines.cli import main as cli

    standins.install_standin(monkeypatch)
    config = _sharded(tiny_config, standins, shards=2)
    plan = plan_shards(config, standins.SCORE_DATE)
    score_shard(config, standins.SCORE_DATE, "3", "failed__run", plan[0])
    score_shard(config, standins.SCORE_DATE, "3", RUN, plan[1])
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"warehouse": config.warehouse.model_dump(mode="json")}))

    assert cli.main(["--config", str(path), "sweep-staging"]) == 0  # both fresh: nothing
    assert len(_staged_runs(config)) == 2
    assert cli.main(["--config", str(path), "sweep-staging", "--run", "failed__run"]) == 0
    assert _staged_runs(config) == {(RUN, standins.SCORE_DATE)}
    with pytest.raises(SystemExit) as refused:
        cli.main(["--config", str(path), "sweep-staging", "--older-than-days", "-1"])
    assert refused.value.code == 2


@pytest.mark.parametrize("failing", ["churn_score_reasons", "customer_segments"])
@pytest.mark.parametrize("path", ["single", "sharded"])
def test_a_failure_writing_reasons_or_segments_leaves_the_days_scores_unchanged(
    tiny_config, standins, monkeypatch, real_model, failing, path
):
    """Scores, reasons and segments of a day are one atomic replace: the scores are loaded first, so a
    failure loading a later table must roll them back too (nothing partial, on DuckDB and Postgres)."""
    from pipelines.warehouse import duckdb_backend, postgres_backend

    score_customers(tiny_config, standins.SCORE_DATE, "3", "manual__old")
    old = _day(tiny_config, standins.SCORE_DATE)
    assert all(len(frame) for frame in old.values())

    def fails_on(original):
        def load(self, table, data, *args, **kwargs):
            if table.startswith(failing) and not table.endswith("_staging"):  # the day's write, not shard staging
                raise RuntimeError(f"lost the connection while writing {table}")
            return original(self, table, data, *args, **kwargs)

        return load

    def new_day():
        if path == "single":
            score_customers(tiny_config, standins.SCORE_DATE, "3", "manual__new")
        else:
            config = _sharded(tiny_config, standins, shards=2)
            plan = plan_shards(config, standins.SCORE_DATE)
            for shard in plan:
                score_shard(config, standins.SCORE_DATE, "3", RUN, shard)
            publish_shards(config, standins.SCORE_DATE, RUN, plan)

    predict = real_model.predict_proba  # the new run's scores differ, so other customers get reasons
    monkeypatch.setattr(real_model, "predict_proba", lambda frame: 1.0 - np.asarray(predict(frame)))
    originals = {}
    for cls in (duckdb_backend.DuckDBWarehouse, postgres_backend.PostgresWarehouse):
        originals[cls] = cls._load_arrow
        monkeypatch.setattr(cls, "_load_arrow", fails_on(cls._load_arrow))
    with pytest.raises(RuntimeError, match=f"while writing {failing}"):
        new_day()
    _assert_same_day(_day(tiny_config, standins.SCORE_DATE), old)
    with open_warehouse(tiny_config) as wh:
        runs = wh.query_df(
            wh.render("SELECT DISTINCT run_id FROM {churn_scores} WHERE score_date = :d"), {"d": standins.SCORE_DATE}
        )
        assert runs["run_id"].tolist() == ["manual__old"]
        if wh.dialect == "postgresql":  # every staging table of the failed swap was dropped
            left = wh.scalar(
                "SELECT COUNT(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :s AND strpos(c.relname, '__load') > 0",
                {"s": wh.schema},
            )
            assert left == 0

    for cls, load in originals.items():  # the same run without the fault: a day that differs from the old one
        monkeypatch.setattr(cls, "_load_arrow", load)
    new_day()
    new = _day(tiny_config, standins.SCORE_DATE)
    assert not new["churn_scores"].equals(old["churn_scores"])
    assert not new["churn_score_reasons"].equals(old["churn_score_reasons"])


# A shard worker SIGKILLed half-way through staging (its scores and first staging table written, nothing committed):
# the kill -9 / OOM-killer / lost-node case, where no handler of ours runs.
KILLED_SHARD = """
import json, os, signal, sys
import numpy as np
import pipelines.registry, pipelines.warehouse.base as base
from pipelines.config import Config
from pipelines.scoring.shards import score_shard

class Formula:  # the tests' stand-in model (see standins.StandInPredictor), not the production model
    kind, feature_names = "baseline", ["days_since_last_order", "orders_90d"]
    def predict_proba(self, frame):
        x = frame[self.feature_names].astype("float64").fillna(0.0).to_numpy()
        return 1.0 / (1.0 + np.exp(-(-1.5 + 0.012 * x[:, 0] - 0.25 * x[:, 1])))

def hook(stage):
    if stage == "load":  # the first staging table is loaded, the shard's transaction is open
        os.kill(os.getpid(), signal.SIGKILL)

config, day, run, shard = Config.model_validate_json(sys.argv[1]), sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
pipelines.registry.load_model_version = lambda config, version, **options: Formula()
base.fault_hook = hook
score_shard(config, day, "3", run, shard)
print("not killed", flush=True)
"""


@pytest.mark.slow
def test_shard_worker_killed_mid_way_leaves_the_day_until_a_rerun_publishes_it(tiny_config, standins, monkeypatch):
    """kill -9 of a shard worker mid-staging: publish refuses, the old day stays; the shard's rerun publishes it whole."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    standins.install_standin(monkeypatch)
    score_customers(tiny_config, standins.SCORE_DATE, "3", "manual__old")
    old = _day(tiny_config, standins.SCORE_DATE)
    config = _sharded(tiny_config, standins, shards=2)
    plan = plan_shards(config, standins.SCORE_DATE)
    score_shard(config, standins.SCORE_DATE, "3", RUN, plan[0])
    staged = _staged_rows(config)

    root = Path(__file__).resolve().parents[3]
    args = [config.model_dump_json(), standins.SCORE_DATE.isoformat(), RUN, json.dumps(plan[1])]
    child = subprocess.run(
        [sys.executable, "-c", KILLED_SHARD, *args],
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -9, f"shard was not killed: rc {child.returncode}\n{child.stderr[-2000:]}"
    assert _staged_rows(config) == staged  # shard 0's rows only: the killed shard's transaction never committed
    with pytest.raises(ShardError, match=r"shard\(s\) \[1\] of 2 did not finish"):
        publish_shards(config, standins.SCORE_DATE, RUN, plan)
    _assert_same_day(_day(config, standins.SCORE_DATE), old)  # readers still see the old day, whole

    score_shard(config, standins.SCORE_DATE, "3", RUN, plan[1])  # the retry (on Postgres it waits for the dead session)
    published = publish_shards(config, standins.SCORE_DATE, RUN, plan)
    assert published["rows"] == sum(s["customers"] for s in plan)
    _assert_same_day(_day(config, standins.SCORE_DATE), old)  # same model, same data: the complete day
    assert _staged_rows(config) == 0


def test_a_failed_sweep_after_publishing_keeps_the_published_day(tiny_config, standins, monkeypatch):
    """The sweep is housekeeping: its failure is logged, the publish still succeeds (a retry would find no staging)."""
    import pipelines.scoring.shards as shards
    from pipelines.warehouse.base import WarehouseError

    standins.install_standin(monkeypatch)
    config = _sharded(tiny_config, standins, shards=2)
    plan = plan_shards(config, standins.SCORE_DATE)
    for shard in plan:
        score_shard(config, standins.SCORE_DATE, "3", RUN, shard)

    def broken(*args, **kwargs):
        raise WarehouseError("Postgres: canceling statement due to lock timeout")

    monkeypatch.setattr(shards, "sweep_staging", broken)
    published = publish_shards(config, standins.SCORE_DATE, RUN, plan)
    assert published["swept_runs"] == 0 and published["rows"] == sum(s["customers"] for s in plan)
    with open_warehouse(config) as wh:
        assert wh.row_count("churn_scores", "score_date = :d", {"d": standins.SCORE_DATE}) == published["rows"]
