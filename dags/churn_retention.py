"""
### churn_retention: one retention action per scored customer, run as an experiment

**When:** after every `churn_scoring` run (scheduled on the `churn_scores` asset). A manual run uses
`conf["action_date"]`, else the triggering asset event's `score_date`, else the logical date.

**Tasks** (each one call into `pipelines.retention.jobs`):

1. `resolve_action_date`: the scored date to act on.
2. `measure_outcomes`: every earlier action date whose horizon (`retention.horizon_days`) has passed by
   then: outcomes (`retention_outcomes`), uplift per action against the permanent holdout with 95% CIs
   and the policies' off-policy values (`retention_effects`), HTML report `reports/retention/<date>.html`.
3. `update_policy`: refits the uplift policy when new outcomes matured and registers it in MLflow
   (`churn-retention-policy@champion`); otherwise keeps the registered one (or the cold-start rules).
4. `assign_actions`: the day's decisions with logged propensities (`retention_actions`), within the budget.

**Writes:** `retention_actions` (partition action_date), `retention_outcomes` / `retention_effects`
(partitions of the matured action dates), the report, possibly a new policy version.
"""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task
from assets import CHURN_SCORES, RETENTION
from churn_common import DEFAULT_ARGS, START_DATE, run_as_of


@dag(
    dag_id="churn_retention",
    schedule=[CHURN_SCORES],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["churn", "retention", "experiment"],
)
def churn_retention():
    @task
    def resolve_action_date() -> str:
        from pipelines.retention.decisions import action_date_to_assign

        context = get_current_context()
        events = [
            getattr(e, "extra", None)
            for events in (context.get("triggering_asset_events") or {}).values()
            for e in events
        ]
        return action_date_to_assign(getattr(context.get("dag_run"), "conf", None), events, run_as_of(context))

    @task
    def measure_outcomes(action_date: str) -> dict:
        import datetime as dt

        from pipelines.config import load_config
        from pipelines.retention.jobs import measure_matured

        return measure_matured(load_config(), dt.date.fromisoformat(action_date))

    @task
    def update_policy(action_date: str) -> dict:
        import datetime as dt

        from pipelines.config import load_config
        from pipelines.retention.jobs import update_policy as update

        return update(load_config(), dt.date.fromisoformat(action_date))

    @task(outlets=[RETENTION])
    def assign_actions(action_date: str) -> dict:
        import datetime as dt

        from pipelines.config import load_config
        from pipelines.retention.jobs import assign_for_date

        result = assign_for_date(load_config(), dt.date.fromisoformat(action_date))
        get_current_context()["outlet_events"][RETENTION].extra = {
            "action_date": action_date,
            "policy_version": result["policy_version"],
        }
        return result

    action_date = resolve_action_date()
    measured = measure_outcomes(action_date)
    learned = update_policy(action_date)
    assigned = assign_actions(action_date)
    measured >> learned >> assigned


churn_retention()
