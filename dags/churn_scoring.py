"""
### churn_scoring: daily churn risk of every active customer

**When:** daily at 04:00 UTC (`CHURN_SCORING_CRON` overrides the cron) **and** whenever the
`@champion` alias moves (the `churn_model_champion` asset emitted by `churn_training`).

**As-of date (score_date):** the run's logical date; `conf["as_of"]` for a manual run; the trigger
time's date for a champion-triggered run. Features only use rows before that date, so re-running a
date rewrites the same partition with the same rows.

**Tasks** (each one call into `pipelines`):

1. `resolve_champion`: looks up `@champion` in the MLflow registry **once**; every later task uses
   that version even if the alias moves mid-run. Fails when the registry is unreachable or no champion exists.
2. `validate_inputs`: Great Expectations checks of the raw tables as of the score date; a failure
   stops the run (no retry) and leaves `churn_scores` untouched.
3. `score_review_sentiment`: gives every review before the score date a `review_sentiment` row from the
   champion's sentiment head (rows it computed before are reused: only new reviews are encoded); the
   shards' `sentiment_*` features read it (`pipelines.scoring.sentiment`).
4. `plan_shards`: customer-id ranges of `scoring.shard_customers` population customers each (one count
   query; the demo has one shard).
5. `score_shard` (mapped over the plan with `.expand()`, one task per shard, on the GPU queue when
   `CHURN_GPU_QUEUE` is set): scores one range with that version into staging keyed by (run, shard);
   a retry replaces only that shard's staging rows. Nothing is visible to readers yet. On DuckDB (one
   writer per file) the shards run one at a time; `CHURN_SCORING_SHARD_CONCURRENCY` sets the cap.
6. `publish_scores`: checks every planned shard finished with the planned row count, then replaces the
   `score_date` partition of `churn_scores`, `churn_score_reasons` and `customer_segments` in one atomic
   step (view `churn_scores_latest` shows the newest partition); a missing or failed shard, or a failed
   write of any of the three, fails it and leaves the old day in all three. Emits the `churn_scores` asset with `score_date` and `model_version`, which
   starts `churn_monitoring`.

**Writes:** `churn_scores`, `churn_score_reasons`, `customer_segments` (one partition per score_date),
via the `*_staging` tables and `churn_score_shards` (cleared by the publish).
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, get_current_context, task
from assets import CHAMPION_MODEL, CHURN_SCORES, RAW_TABLES
from churn_common import (
    DEFAULT_ARGS,
    SCORING_CRON,
    SHARD_CONCURRENCY,
    START_DATE,
    gpu_task_kwargs,
    validate_run_date,
)


@dag(
    dag_id="churn_scoring",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable(SCORING_CRON, timezone="UTC"), assets=CHAMPION_MODEL),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["churn", "scoring"],
)
def churn_scoring():
    @task
    def resolve_champion() -> dict:
        from pipelines.config import load_config
        from pipelines.registry import resolve_champion as resolve

        ref = resolve(load_config())
        return {"model_name": str(ref.name), "version": str(ref.version), "run_id": str(ref.run_id)}

    @task(retries=0, inlets=[RAW_TABLES])
    def validate_inputs() -> str:
        """Fail (without retry) when the inputs break the contract as of the score date."""
        return validate_run_date(get_current_context(), "scoring inputs")

    @task
    def score_review_sentiment(score_date: str, champion: dict) -> dict:
        from pipelines.config import load_config
        from pipelines.scoring.sentiment import refresh_review_sentiment

        return refresh_review_sentiment(load_config(), score_date, champion["version"])

    @task
    def plan_shards(score_date: str) -> list[dict]:
        from pipelines.config import load_config
        from pipelines.scoring.shards import plan_shards as plan

        return plan(load_config(), score_date)

    @task(max_active_tis_per_dagrun=SHARD_CONCURRENCY, **gpu_task_kwargs())
    def score_shard(score_date: str, champion: dict, shard: dict) -> dict:
        from pipelines.config import load_config
        from pipelines.scoring.shards import score_shard as score

        run_id = get_current_context()["run_id"]
        return score(load_config(), score_date, champion["version"], run_id, shard)

    @task(outlets=[CHURN_SCORES])
    def publish_scores(score_date: str, champion: dict, plan: list[dict], shards: list[dict]) -> dict:
        from pipelines.config import load_config
        from pipelines.scoring.shards import publish_shards
        from pipelines.xcom import small_dict

        context = get_current_context()
        result = publish_shards(load_config(), score_date, context["run_id"], plan)
        result["slowest_shard_seconds"] = max((s["seconds"] for s in shards), default=None)
        context["outlet_events"][CHURN_SCORES].extra = {"score_date": score_date, "model_version": champion["version"]}
        summary = small_dict(result)
        summary.update(score_date=score_date, model_version=champion["version"])
        return summary

    champion = resolve_champion()
    score_date = validate_inputs()
    champion >> score_date  # resolve the champion first: fail fast when the registry is down
    plan = plan_shards(score_date)
    score_review_sentiment(score_date, champion) >> plan  # the shards' sentiment_* features read it
    shards = score_shard.partial(score_date=score_date, champion=champion).expand(shard=plan)
    publish_scores(score_date, champion, plan, shards)


churn_scoring()
