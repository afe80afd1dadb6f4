"""
### churn_training: quarterly (re)training of the churn-risk model

**When:** at 03:00 UTC on the first day of each quarter (`0 3 1 1,4,7,10 *`), and whenever
`churn_monitoring` decides the model has drifted (triggered with `conf={"reason": ..., "as_of": ...}`).
Runs one at a time (`max_active_runs=1`).

**As-of date:** the run's logical date (its data interval end), or `conf["as_of"]` for a
monitor-triggered run. Every task reads the warehouse as of that date, so re-running or
backfilling a date reproduces it; never "latest".

**Tasks** (each one call into `pipelines`):

1. `validate_raw_data`: Great Expectations checks of the raw tables as of the date
   (`pipelines.validation.validate_warehouse`). A failure stops the run and is **not retried**;
   Data Docs under `reports/data_docs/` say what failed.
2. `score_review_sentiment`: trains the review-sentiment head (stars as weak labels) on the reviews
   before the training window's last train cutoff and rewrites `review_sentiment` for every review before
   the date (`pipelines.training.sentiment`); the `sentiment_*` features read it.
   Then `build_training_sets`: point-in-time train/validation/test sets ->
   `data/datasets/<as_of>/*.parquet` + `manifest.json`.
3. `train_model`: fine-tunes the transformer and the LightGBM baseline, logs both to MLflow
   (runs on the `gpu` Celery queue when `CHURN_GPU_QUEUE` is set) -> MLflow run id.
4. `evaluate_model`: test-set metrics, per-segment metrics and plots logged to the MLflow run.
5. `register_challenger`: registers a new version of the model (emits `churn_model_registered`).
6. `run_promotion_gate`: compares the challenger with `@champion`; promotes it when
   `registry.auto_promote` is on and it passes.
7. `publish_run_summary`: Markdown summary under `reports/runs/` (also in the task log).
8. `announce_champion` (only when promoted): emits `churn_model_champion`, which re-runs
   `churn_scoring` with the new champion.

**Writes:** training sets, an MLflow run, a registered model version, possibly the `@champion`
alias, and the run summary.
"""

from __future__ import annotations

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task
from assets import CHAMPION_MODEL, RAW_TABLES, REGISTERED_MODEL
from churn_common import DEFAULT_ARGS, START_DATE, TRAINING_CRON, gpu_task_kwargs, validate_run_date


@dag(
    dag_id="churn_training",
    schedule=CronTriggerTimetable(TRAINING_CRON, timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["churn", "training", "mlflow"],
)
def churn_training():
    @task(retries=0, inlets=[RAW_TABLES])
    def validate_raw_data() -> str:
        """Fail (without retry) when the raw data breaks the contract as of the run's date."""
        return validate_run_date(get_current_context(), "raw data")

    @task
    def build_training_sets(as_of: str) -> str:
        import datetime as dt

        from pipelines.config import load_config
        from pipelines.datasets import build_training_sets as build

        return str(build(load_config(), dt.date.fromisoformat(as_of)))

    @task
    def score_review_sentiment(as_of: str) -> dict:
        from pipelines.config import load_config
        from pipelines.training.sentiment import score_review_sentiment as score

        return score(load_config(), as_of)

    @task(**gpu_task_kwargs())
    def train_model(manifest_path: str) -> str:
        from pipelines.config import load_config
        from pipelines.training import train_and_log

        return str(train_and_log(load_config(), manifest_path))

    @task
    def evaluate_model(mlflow_run_id: str) -> dict:
        from pipelines.config import load_config
        from pipelines.evaluation import evaluate_run
        from pipelines.xcom import small_dict

        return small_dict(evaluate_run(load_config(), mlflow_run_id))

    @task(outlets=[REGISTERED_MODEL])
    def register_challenger(mlflow_run_id: str) -> str:
        from pipelines.config import load_config
        from pipelines.registry import register_candidate

        version = str(register_candidate(load_config(), mlflow_run_id))
        get_current_context()["outlet_events"][REGISTERED_MODEL].extra = {
            "version": version,
            "mlflow_run_id": mlflow_run_id,
        }
        return version

    @task
    def run_promotion_gate(version: str) -> dict:
        from pipelines.config import load_config
        from pipelines.registry import run_promotion_gate as gate
        from pipelines.xcom import small_dict

        return small_dict(gate(load_config(), version))

    @task
    def publish_run_summary(as_of: str, mlflow_run_id: str, version: str, metrics: dict, gate: dict) -> str:
        from pipelines.config import load_config
        from pipelines.registry.summary import publish_run_summary as publish

        airflow_run_id = get_current_context()["run_id"]
        return publish(
            load_config(),
            as_of=as_of,
            run_id=mlflow_run_id,
            version=version,
            metrics=metrics,
            gate=gate,
            airflow_run_id=airflow_run_id,
        )

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def champion_changed(gate: dict) -> bool:
        """Continue to `announce_champion` only when the gate promoted the challenger."""
        return bool(gate.get("promoted"))

    @task(outlets=[CHAMPION_MODEL])
    def announce_champion(version: str) -> str:
        """Emit the champion asset event: churn_scoring re-scores with the new champion."""
        get_current_context()["outlet_events"][CHAMPION_MODEL].extra = {"version": version}
        return version

    as_of = validate_raw_data()
    manifest = build_training_sets(as_of)
    score_review_sentiment(as_of) >> manifest  # the training sets' sentiment_* features read its table
    mlflow_run_id = train_model(manifest)
    metrics = evaluate_model(mlflow_run_id)
    version = register_challenger(mlflow_run_id)
    metrics >> version  # register only what was evaluated
    gate = run_promotion_gate(version)
    publish_run_summary(as_of, mlflow_run_id, version, metrics, gate)
    champion_changed(gate) >> announce_champion(version)


churn_training()
