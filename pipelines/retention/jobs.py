"""Task-level retention jobs: what the ``churn_retention`` DAG and the ``churn retention`` CLI call.

Each takes the Config and a date and returns a small JSON-able dict (XCom-sized).

- ``measure_matured(config, as_of)``: outcomes of every action date whose horizon has passed, then their
  effects and policy values (``retention_effects``) and the HTML report;
- ``update_policy(config, as_of)``: refit and register the policy when new outcomes matured since the
  registered one was trained (and there are enough), else keep it;
- ``assign_for_date(config, action_date)``: the registered policy (or the cold-start rules) decides;
- ``simulate_campaign(config, action_date)``: sample data only: plays out the day's assignments in the
  simulator (``pipelines.data.simulation``) so a demo can measure them.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from pipelines.retention.assign import RULES_VERSION, RetentionError, assign_actions
from pipelines.retention.effects import compute_effects
from pipelines.retention.outcomes import measure_outcomes

if TYPE_CHECKING:
    from pipelines.config import Config

logger = logging.getLogger(__name__)

IN_SAMPLE = "learned_in_sample"  # a policy valued on outcomes it was trained on (optimistic)


def _deciding_policy(config: Config, wh, action_date: dt.date):
    """The registered policy version that made the day's decisions (None for the cold-start rules)."""
    version = wh.scalar(
        wh.render("SELECT MIN(policy_version) FROM {retention_actions} WHERE action_date = :d"), {"d": action_date}
    )
    if not version or version == RULES_VERSION:
        return None
    from pipelines.retention.policy import load_policy_version

    return load_policy_version(config, str(version).lstrip("v"))


def measure_matured(config: Config, as_of: dt.date) -> dict[str, Any]:
    """Outcomes, effects and the report of every action date matured by ``as_of`` and not yet measured."""
    from pipelines.retention.report import write_report
    from pipelines.warehouse import open_warehouse

    out: dict[str, Any] = {"as_of": as_of.isoformat(), "measured": [], "reports": []}
    with open_warehouse(config) as wh:
        for done in measure_outcomes(config, as_of, wh=wh):
            action_date = dt.date.fromisoformat(done["action_date"])
            policy = _deciding_policy(config, wh, action_date)
            rows = compute_effects(config, action_date, policy=policy, wh=wh)
            report = write_report(config, wh, action_date, rows, policy)
            out["measured"].append(
                {
                    **done,
                    "effects": {
                        r["action"]: {
                            "uplift": round(r["uplift"], 4),
                            "ci": [round(r["ci_low"], 4), round(r["ci_high"], 4)],
                            "net_value": round(r["net_value"], 3),
                        }
                        for r in rows
                        if r["kind"] == "action_effect"
                    },
                    "policy_values_dr": {
                        r["action"]: round(r["uplift"], 3)
                        for r in rows
                        if r["kind"] == "policy_value" and r["estimator"] == "dr"
                    },
                }
            )
            out["reports"].append(str(report))
    return out


def update_policy(config: Config, as_of: dt.date) -> dict[str, Any]:
    """Refit and register the policy if outcomes matured since the registered one; else report why not."""
    from pipelines.retention.policy import learn_policy, resolve_policy
    from pipelines.warehouse import open_warehouse

    with open_warehouse(config) as wh:
        latest = as_of - dt.timedelta(days=config.retention.horizon_days)
        measured = wh.query_df(
            wh.render(
                "SELECT action_date, COUNT(*) AS n FROM {retention_outcomes} WHERE action_date <= :d "
                "GROUP BY action_date ORDER BY 1"
            ),
            {"d": latest},
        )
        dates = sorted(str(d)[:10] for d in measured["action_date"])
        current = resolve_policy(config)
        if current is not None and set(dates) <= set(current.meta.get("trained_on_dates", [])):
            return {
                "learned": False,
                "reason": "no new outcomes since the registered policy",
                "version": current.version,
            }
        if int(measured["n"].sum() if len(measured) else 0) < config.retention.min_outcomes_to_learn:
            return {
                "learned": False,
                "reason": f"{int(measured['n'].sum() if len(measured) else 0)} matured outcomes, fewer than "
                f"retention.min_outcomes_to_learn ({config.retention.min_outcomes_to_learn})",
                "version": current.version if current else RULES_VERSION,
            }
        try:
            result = learn_policy(config, as_of, wh=wh)
        except RetentionError as exc:  # too few usable rows (e.g. most were outside the budget): keep the policy
            logger.warning("retention policy not updated: %s", exc)
            return {"learned": False, "reason": str(exc), "version": current.version if current else RULES_VERSION}
        # The latest measured date's effects gain the new policy's value and Qini: in-sample (it trained on them).
        from pipelines.retention.policy import load_policy_version
        from pipelines.retention.report import write_report

        policy = load_policy_version(config, result["version"])
        evaluated = dt.date.fromisoformat(result["evaluated_on"])
        rows = compute_effects(config, evaluated, policy=policy, policy_name=IN_SAMPLE, wh=wh)
        result["report"] = str(write_report(config, wh, evaluated, rows, policy))
        _log_report(config, result["version"], result["report"])
    return {"learned": True, **result, "version": f"v{result['version']}"}


def assign_for_date(config: Config, action_date: dt.date) -> dict[str, Any]:
    """Resolve the registered policy (cold start: the rules) and assign the day's actions."""
    from pipelines.retention.policy import resolve_policy

    policy = resolve_policy(config)
    return assign_actions(config, action_date, policy=policy)


def simulate_campaign(config: Config, action_date: dt.date, seed: int | None = None) -> dict[str, Any]:
    """Play out the day's assignments in the simulated world (writes the orders of the next horizon)."""
    from pipelines.data.simulation import play_out
    from pipelines.warehouse import open_warehouse

    with open_warehouse(config) as wh:
        actions = wh.query_df(
            wh.render("SELECT customer_id, action FROM {retention_actions} WHERE action_date = :d"), {"d": action_date}
        )
        if actions.empty:
            raise RetentionError(f"retention_actions has no rows for {action_date}: run the assignment first")
        truth = play_out(
            wh,
            actions,
            action_date,
            config.retention.horizon_days,
            seed=config.sample_data.seed if seed is None else seed,
            actions=config.retention.action_names,
        )
    true_uplift = {
        a: round(float((truth[f"p_{a}"] - truth["p_none"]).mean()), 4) for a in config.retention.action_names[1:]
    }
    return {
        "action_date": action_date.isoformat(),
        "customers": len(truth),
        "ordered": int(truth["ordered"].sum()),
        "matures_on": (action_date + dt.timedelta(days=config.retention.horizon_days)).isoformat(),
        "true_mean_uplift": true_uplift,
    }


def _log_report(config: Config, version: str, report: str) -> None:
    """Attach the HTML report (Qini curve, uplift by decile, profit vs share targeted) to the policy's run."""
    from pipelines.tracking import client_for

    client = client_for(config)
    run_id = client.get_model_version(config.retention.policy_model_name, str(version)).run_id
    client.log_artifact(run_id, report, "report")
