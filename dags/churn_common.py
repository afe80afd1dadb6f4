"""Settings shared by the churn DAGs: default_args, the GPU queue switch, the as-of date.

Kept light on purpose (stdlib + pendulum + airflow.sdk only): the DAG processor imports it on every
parse. Everything heavy (pipelines.*, torch, mlflow, GX, pandas) is imported inside task functions.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum

OWNER = "ml-platform"
START_DATE = pendulum.datetime(2025, 1, 1, tz="UTC")

# Transient failures (a locked DuckDB file, a restarting MLflow server) are retried with exponential
# backoff: 1 min, 2 min, 4 min ... capped at 30 min. CHURN_TASK_RETRIES=0 turns retries off (tests).
TASK_RETRIES = int(os.environ.get("CHURN_TASK_RETRIES", "2"))

DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": TASK_RETRIES,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
}

# Celery queue for GPU work (training). Empty: run on the default queue (CPU workers, `airflow dags test`).
# docker compose sets CHURN_GPU_QUEUE=gpu together with the `gpu` profile's worker (`celery worker --queues gpu`).
GPU_QUEUE = os.environ.get("CHURN_GPU_QUEUE", "").strip() or None
# Optional pool that caps concurrent GPU jobs (create it with `airflow pools set gpu 1 "GPU slots"`).
GPU_POOL = os.environ.get("CHURN_GPU_POOL", "").strip() or None

# Scoring cron (UTC). Override per deployment without touching code.
SCORING_CRON = os.environ.get("CHURN_SCORING_CRON", "0 4 * * *")
TRAINING_CRON = os.environ.get("CHURN_TRAINING_CRON", "0 3 1 1,4,7,10 *")


# Mapped score_shard tasks running at once in one churn_scoring run. DuckDB allows one writer per file, so shards
# run one at a time unless CHURN_WAREHOUSE_URL points at PostgreSQL; CHURN_SCORING_SHARD_CONCURRENCY overrides
# (0: no cap beyond Airflow's own; set it when the config file, not the environment, names a Postgres warehouse).
_SHARDS_ENV = os.environ.get("CHURN_SCORING_SHARD_CONCURRENCY", "").strip()
_POSTGRES = os.environ.get("CHURN_WAREHOUSE_URL", "").strip().startswith("postgres")
SHARD_CONCURRENCY = (int(_SHARDS_ENV) or None) if _SHARDS_ENV else (None if _POSTGRES else 1)


def gpu_task_kwargs() -> dict:
    """`queue=`/`pool=` overrides for the training task, only when configured."""
    kwargs: dict = {}
    if GPU_QUEUE:
        kwargs["queue"] = GPU_QUEUE
    if GPU_POOL:
        kwargs["pool"] = GPU_POOL
    return kwargs


def run_as_of(context) -> str:
    """The run's as-of date (ISO), from the task context: conf["as_of"], else the data interval end,
    else the logical date, else run_after (asset-triggered runs have no logical date in Airflow 3)."""
    from pipelines.dates import resolve_as_of

    dag_run = context.get("dag_run")
    return resolve_as_of(
        conf=getattr(dag_run, "conf", None) or {},
        data_interval_end=context.get("data_interval_end"),
        logical_date=context.get("logical_date"),
        run_after=getattr(dag_run, "run_after", None),
    )


def validate_run_date(context, what: str) -> str:
    """Validate the raw tables as of the run's date; a failure fails the task for good (no retry).

    Shared by the training and scoring DAGs: bad data must stop a run before any model or score lands.
    """
    import datetime as dt

    from airflow.sdk.exceptions import AirflowFailException

    from pipelines.config import load_config
    from pipelines.validation import ValidationFailed, validate_warehouse

    as_of = run_as_of(context)
    try:
        validate_warehouse(load_config(), dt.date.fromisoformat(as_of))
    except ValidationFailed as exc:
        raise AirflowFailException(f"{what} failed validation as of {as_of}: {exc}") from exc
    return as_of
