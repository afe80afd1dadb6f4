"""
### churn_monitoring: drift and realized performance of the churn scores

**When:** after every `churn_scoring` run (scheduled on the `churn_scores` asset). A manual run
monitors the logical date (or `conf["score_date"]` / `conf["model_version"]`). With
`conf["reference_start"]` and `conf["reference_end"]` (YYYY-MM-DD) it compares the score date with the
scored population of that period (e.g. the month before) instead of the model's training reference.

**Tasks** (each one call into `pipelines`):

1. `resolve_scoring_run`: which partition to monitor: `conf`, else the triggering `churn_scores`
   asset event (`score_date`, `model_version`), else the logical date and the version that scored it.
2. `monitor_scores`: Evidently drift of inputs and scores against the training reference, plus the
   realized PR-AUC of older scores whose labels have matured; writes `monitoring_drift`,
   `monitoring_performance` and `reports/drift/<score_date>.html`; returns `retrain` and `reasons`.
3. `needs_retraining`: short-circuits unless the monitor asked for retraining.
4. `trigger_retraining`: triggers `churn_training` with `conf={"reason": ..., "as_of": score_date}`.

**Writes:** `monitoring_drift`, `monitoring_performance` (partition per score_date / evaluation date),
the HTML drift report, and possibly a `churn_training` run.
"""

from __future__ import annotations

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, get_current_context, task
from assets import CHURN_SCORES, MONITORING
from churn_common import DEFAULT_ARGS, START_DATE, run_as_of


@dag(
    dag_id="churn_monitoring",
    schedule=[CHURN_SCORES],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["churn", "monitoring", "evidently"],
)
def churn_monitoring():
    @task
    def resolve_scoring_run() -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from pipelines.config import load_config
        from pipelines.monitoring.decisions import NoScoringRunError, scoring_run_to_monitor
        from pipelines.scoring.runs import latest_scored_version

        context = get_current_context()
        events = [
            getattr(e, "extra", None)
            for events in (context.get("triggering_asset_events") or {}).values()
            for e in events
        ]
        try:
            return scoring_run_to_monitor(
                getattr(context.get("dag_run"), "conf", None),
                events,
                run_as_of(context),
                lambda day: latest_scored_version(load_config(), day),
            )
        except NoScoringRunError as exc:
            raise AirflowFailException(str(exc)) from exc

    @task(outlets=[MONITORING])
    def monitor_scores(scoring_run: dict) -> dict:
        import datetime as dt

        from pipelines.config import load_config
        from pipelines.monitoring import monitor_scores as monitor

        result = monitor(
            load_config(),
            dt.date.fromisoformat(scoring_run["score_date"]),
            scoring_run["model_version"],
            reference_start=scoring_run.get("reference_start"),
            reference_end=scoring_run.get("reference_end"),
        )
        return {
            "retrain": bool(result.get("retrain")),
            "reasons": [str(r) for r in result.get("reasons") or []],
            "headline": str(result.get("headline") or ""),
            "report_path": str(result.get("report_path") or ""),
            **scoring_run,
        }

    @task.short_circuit
    def needs_retraining(result: dict) -> bool:
        from pipelines.monitoring.decisions import should_retrain

        return should_retrain(result)

    trigger_retraining = TriggerDagRunOperator(
        task_id="trigger_retraining",
        trigger_dag_id="churn_training",
        conf={
            "reason": "{{ ti.xcom_pull(task_ids='monitor_scores')['reasons'] | join('; ') or 'monitoring' }}",
            "as_of": "{{ ti.xcom_pull(task_ids='monitor_scores')['score_date'] }}",
            "model_version": "{{ ti.xcom_pull(task_ids='monitor_scores')['model_version'] }}",
            "report_path": "{{ ti.xcom_pull(task_ids='monitor_scores')['report_path'] }}",
            "triggered_by": "{{ dag.dag_id }}/{{ run_id }}",
        },
        trigger_run_id="retrain__{{ ti.xcom_pull(task_ids='monitor_scores')['score_date'] }}__{{ ts_nodash }}",
        skip_when_already_exists=True,
        wait_for_completion=False,
    )

    result = monitor_scores(resolve_scoring_run())
    needs_retraining(result) >> trigger_retraining


churn_monitoring()
