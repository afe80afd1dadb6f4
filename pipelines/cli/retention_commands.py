"""Retention subcommands: ``churn retention assign|simulate|measure|learn|effects``."""

from __future__ import annotations

import argparse
import json
import logging

from pipelines.cli.common import emit, iso_date
from pipelines.config import Config

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parent = subparsers.add_parser(
        "retention",
        help="retention actions as an experiment: assign, simulate (sample data), measure, learn, effects",
        description="Choose one action per scored customer (permanent holdout, logged propensities, budget), "
        "measure outcomes once the horizon has passed, estimate uplift per action against the holdout and the "
        "policy's value off-policy, and learn the next policy.",
    )
    sub = parent.add_subparsers(dest="retention_command", metavar="STEP", required=True)

    p = sub.add_parser("assign", help="decide the actions for the customers scored on DATE (replaces DATE)")
    p.add_argument("--date", required=True, type=iso_date, help="action date = a churn_scores score_date")
    p.add_argument("--rules", action="store_true", help="use the cold-start rules even if a policy is registered")
    p.set_defaults(handler=assign)

    p = sub.add_parser(
        "simulate",
        help="sample data only: play out DATE's assignments in the simulator (writes the next horizon's orders)",
    )
    p.add_argument("--date", required=True, type=iso_date, help="action date whose assignments to play out")
    p.add_argument("--seed", type=int, help="simulation seed (default: sample_data.seed)")
    p.set_defaults(handler=simulate)

    p = sub.add_parser("measure", help="outcomes, effects and the HTML report of action dates matured by AS_OF")
    p.add_argument("--as-of", required=True, type=iso_date, help="measure action dates with date + horizon <= AS_OF")
    p.set_defaults(handler=measure)

    p = sub.add_parser("learn", help="fit and register the policy on the outcomes matured by AS_OF")
    p.add_argument("--as-of", required=True, type=iso_date)
    p.set_defaults(handler=learn)

    p = sub.add_parser("effects", help="print the measured effects and policy values of an action date")
    p.add_argument("--date", required=True, type=iso_date, help="action date")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=effects)


def assign(config: Config, args: argparse.Namespace) -> int:
    from pipelines.retention import assign_actions
    from pipelines.retention.jobs import assign_for_date

    result = assign_actions(config, args.date) if args.rules else assign_for_date(config, args.date)
    emit(json.dumps(result, indent=2, default=str))
    return 0


def simulate(config: Config, args: argparse.Namespace) -> int:
    from pipelines.retention.jobs import simulate_campaign

    emit(json.dumps(simulate_campaign(config, args.date, args.seed), indent=2, default=str))
    return 0


def measure(config: Config, args: argparse.Namespace) -> int:
    from pipelines.retention.jobs import measure_matured

    emit(json.dumps(measure_matured(config, args.as_of), indent=2, default=str))
    return 0


def learn(config: Config, args: argparse.Namespace) -> int:
    from pipelines.retention.jobs import update_policy

    emit(json.dumps(update_policy(config, args.as_of), indent=2, default=str))
    return 0


def effects(config: Config, args: argparse.Namespace) -> int:
    from pipelines.retention import RetentionError
    from pipelines.warehouse import open_warehouse

    with open_warehouse(config) as wh:
        frame = wh.query_df(
            wh.render(
                "SELECT kind, action, estimator, n, retention_rate, holdout_rate, uplift, ci_low, ci_high, "
                "revenue_uplift, net_value FROM {retention_effects} WHERE action_date = :d ORDER BY kind, action, "
                "estimator"
            ),
            {"d": args.date},
        )
    if frame.empty:
        raise RetentionError(f"retention_effects has no rows for {args.date}: run `churn retention measure` first")
    if args.json:
        emit(frame.to_json(orient="records", indent=2))
    else:
        emit(format_effects(frame))
    return 0


def format_effects(frame) -> str:
    """Two small tables: uplift per action vs holdout, then policy values (net value per customer)."""
    lines = ["action          n      treated  holdout  uplift [95% CI]            revenue  net/customer"]
    for r in frame[frame["kind"] == "action_effect"].itertuples():
        lines.append(
            f"{r.action:<15} {r.n:<6} {r.retention_rate:7.3f}  {r.holdout_rate:7.3f}  "
            f"{r.uplift:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]   {r.revenue_uplift:+7.2f}  {r.net_value:+7.2f}"
        )
    values = frame[frame["kind"] == "policy_value"]
    if len(values):
        lines += ["", "policy value (net per customer)  estimator  value [95% CI]"]
        for r in values.itertuples():
            lines.append(f"{r.action:<32} {r.estimator:<10} {r.uplift:7.2f} [{r.ci_low:7.2f}, {r.ci_high:7.2f}]")
    models = frame[frame["kind"] == "uplift_model"]
    if len(models):
        lines += [
            "",
            "uplift model  " + "  ".join(f"{r.action}.{r.estimator}={r.uplift:+.4f}" for r in models.itertuples()),
        ]
    return "\n".join(lines)
