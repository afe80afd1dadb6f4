"""DAG integrity: every DAG file parses without errors, secrets or heavy imports, and follows the house rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = ROOT / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if p.name not in {"assets.py", "churn_common.py"})
EXPECTED_DAGS = {"churn_training", "churn_scoring", "churn_monitoring", "churn_retention"}
HEAVY_MODULES = (
    "torch",
    "mlflow",
    "great_expectations",
    "evidently",
    "pandas",
    "transformers",
    "lightgbm",
    "sklearn",
    "duckdb",
    "psycopg",
)


def _airflow_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS_DIR),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    """Parse the dags folder the way the DAG processor does (bundle root on sys.path), with
    Variable.get and connections patched to fail: parsing must not need secrets."""
    tmp = tmp_path_factory.mktemp("dagbag")
    os.environ.setdefault("AIRFLOW_HOME", str(tmp / "airflow"))
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_DIR)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from unittest import mock

    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.sdk import BaseHook, Variable

    def _no_secrets(*args, **kwargs):
        raise AssertionError("DAG files must not read Variables or Connections at parse time")

    with (
        mock.patch.object(Variable, "get", side_effect=_no_secrets),
        mock.patch.object(BaseHook, "get_connection", side_effect=_no_secrets),
    ):
        return BundleDagBag(dag_folder=str(DAGS_DIR), bundle_path=DAGS_DIR)


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}, "\n".join(f"{k}:\n{v}" for k, v in dagbag.import_errors.items())


def test_expected_dags_exist(dagbag):
    assert set(dagbag.dag_ids) >= EXPECTED_DAGS


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAGS))
def test_dag_house_rules(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.tags, f"{dag_id} has no tags"
    assert dag.doc_md and len(dag.doc_md) > 200, f"{dag_id} needs a doc_md telling an operator what it does"
    assert dag.default_args.get("retries", 0) >= 1 or os.environ.get("CHURN_TASK_RETRIES") == "0"
    assert dag.default_args.get("retry_exponential_backoff"), f"{dag_id}: retries need exponential backoff"
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert (
        str(dag.start_date.tzinfo) in {"UTC", "Timezone('UTC')", "+00:00"}
        or dag.start_date.utcoffset().total_seconds() == 0
    )


def test_training_graph_and_retries(dagbag):
    dag = dagbag.dags["churn_training"]
    assert dag.max_active_runs == 1
    order = [
        "validate_raw_data",
        "build_training_sets",
        "train_model",
        "evaluate_model",
        "register_challenger",
        "run_promotion_gate",
        "publish_run_summary",
    ]
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert downstream in dag.get_task(upstream).downstream_task_ids, f"{upstream} -> {downstream} missing"
    # a validation failure is not transient: no retries on the validation task
    assert dag.get_task("validate_raw_data").retries == 0
    from churn_common import TASK_RETRIES

    assert dag.get_task("train_model").retries == TASK_RETRIES  # transient failures (a busy GPU node) are retried
    assert "announce_champion" in dag.get_task("champion_changed").downstream_task_ids
    assert "score_review_sentiment" in dag.get_task("validate_raw_data").downstream_task_ids
    assert "0 3 1 1,4,7,10 *" in repr(dag.timetable)


def test_assets_connect_the_dags(dagbag):
    import sys as _sys

    _sys.path.insert(0, str(DAGS_DIR))
    import assets

    training, scoring, monitoring = (dagbag.dags[d] for d in ("churn_training", "churn_scoring", "churn_monitoring"))
    outlets = {t.task_id: [a.name for a in t.outlets] for t in training.tasks}
    assert outlets["register_challenger"] == [assets.REGISTERED_MODEL.name]
    assert outlets["announce_champion"] == [assets.CHAMPION_MODEL.name]
    assert [a.name for a in scoring.get_task("publish_scores").outlets] == [assets.CHURN_SCORES.name]
    # scoring: cron OR the champion asset; monitoring: the churn_scores asset
    assert type(scoring.timetable).__name__ == "AssetOrTimeSchedule"
    assert assets.CHAMPION_MODEL.name in repr(scoring.timetable)
    assert assets.CHURN_SCORES.name in repr(monitoring.timetable)
    trigger = monitoring.get_task("trigger_retraining")
    assert trigger.trigger_dag_id == "churn_training"
    assert "reason" in trigger.conf
    assert "trigger_retraining" in monitoring.get_task("needs_retraining").downstream_task_ids
    assert scoring.get_task("validate_inputs").retries == 0


def test_scoring_maps_shards_then_publishes_once(dagbag):
    """plan -> score_shard mapped over the plan (one task per shard) -> one publish that emits churn_scores."""
    dag = dagbag.dags["churn_scoring"]
    shard = dag.get_task("score_shard")
    assert type(shard).__name__.endswith("MappedOperator")
    assert "shard" in shard.op_kwargs_expand_input.value  # expanded over the plan's shards
    assert "score_shard" in dag.get_task("plan_shards").downstream_task_ids
    assert "publish_scores" in shard.downstream_task_ids
    assert "publish_scores" in dag.get_task("plan_shards").downstream_task_ids
    assert "score_customers" not in dag.task_ids
    from churn_common import SHARD_CONCURRENCY

    assert shard.max_active_tis_per_dagrun == SHARD_CONCURRENCY  # 1 on DuckDB (one writer), no cap on Postgres


def test_retention_runs_after_scores_and_measures_before_assigning(dagbag):
    import sys as _sys

    _sys.path.insert(0, str(DAGS_DIR))
    import assets

    dag = dagbag.dags["churn_retention"]
    assert assets.CHURN_SCORES.name in repr(dag.timetable)
    assert "update_policy" in dag.get_task("measure_outcomes").downstream_task_ids
    assert "assign_actions" in dag.get_task("update_policy").downstream_task_ids
    assert [a.name for a in dag.get_task("assign_actions").outlets] == [assets.RETENTION.name]


def test_gpu_queue_switch(tmp_path):
    """CHURN_GPU_QUEUE routes the training task (and only it) to that Celery queue."""
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]);"
        "from airflow.dag_processing.dagbag import BundleDagBag;"
        "from pathlib import Path;"
        "b = BundleDagBag(dag_folder=sys.argv[1], bundle_path=Path(sys.argv[1]));"
        "d = b.dags['churn_training'];"
        "print(json.dumps({t.task_id: t.queue for t in d.tasks}))"
    )
    env = _airflow_env(tmp_path) | {"CHURN_GPU_QUEUE": "gpu"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(DAGS_DIR)], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    queues = json.loads(out.stdout.strip().splitlines()[-1])
    assert queues["train_model"] == "gpu"
    assert {q for t, q in queues.items() if t != "train_model"} == {"default"}
    scoring = subprocess.run(
        [sys.executable, "-c", code.replace("'churn_training'", "'churn_scoring'"), str(DAGS_DIR)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    queues = json.loads(scoring.stdout.strip().splitlines()[-1])
    assert queues["score_shard"] == "gpu"  # the mapped shards score on GPU workers
    assert {q for t, q in queues.items() if t != "score_shard"} == {"default"}


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_no_heavy_imports_at_parse_time(dag_file, tmp_path):
    """Importing a DAG file must not pull in torch, mlflow, GX, pandas...: the DAG processor re-parses
    every file every few seconds. Runs in a fresh interpreter so other tests' imports don't leak in."""
    code = (
        "import importlib.util, json, sys;"
        f"sys.path.insert(0, {str(DAGS_DIR)!r});"
        f"spec = importlib.util.spec_from_file_location('dag_under_test', {str(dag_file)!r});"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod);"
        f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=_airflow_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert heavy == [], f"{dag_file.name} imports {heavy} at parse time"
