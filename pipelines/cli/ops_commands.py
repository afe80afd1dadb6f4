"""Operations subcommands: ``churn score`` (batch scoring), ``churn sweep-staging`` (a failed sharded run's
staging rows) and ``churn monitor`` (drift + backtest)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging

from pipelines.cli.common import emit, iso_date
from pipelines.config import Config

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "score",
        help="score the active population for a date and write churn_scores (replaces that date)",
        description="Score every customer with a completed order in the lookback window before DATE with one "
        "registered model version, and atomically replace the churn_scores partition of DATE.",
    )
    p.add_argument("--date", required=True, type=iso_date, help="score date (features use data before DATE 00:00 UTC)")
    p.add_argument("--model-version", help="registered version to use (default: the current @champion, resolved once)")
    p.add_argument("--run-id", help="recorded in churn_scores.run_id (default: cli__<UTC timestamp>)")
    p.set_defaults(handler=score)

    p = subparsers.add_parser(
        "sweep-staging",
        help="delete the shard staging rows of scoring runs that never published (failed or abandoned)",
        description="Delete the churn_scores/reasons/segments staging rows and churn_score_shards entries of "
        "every (run, score_date) whose last shard finished more than --older-than-days ago (default "
        "scoring.staging_retention_days), or of the run named by --run. Published days are never touched.",
    )
    p.add_argument("--older-than-days", type=_days, help="age of the run's last finished shard (default: config)")
    p.add_argument(
        "--run", dest="stage_run", help="sweep this run's staging whatever its age (a failed Airflow run id)"
    )
    p.set_defaults(handler=sweep_staging)

    p = subparsers.add_parser(
        "monitor",
        help="drift report (Evidently), backtest of matured scores, retrain signal for a scored date",
        description="Compare DATE's scored population with the model version's training reference (Evidently "
        "HTML under reports/drift/), write monitoring_drift and monitoring_performance, print the retrain decision.",
    )
    p.add_argument("--date", required=True, type=iso_date, help="score date to monitor (must have churn_scores rows)")
    p.add_argument(
        "--model-version",
        help="version whose reference to compare with (default: the version that wrote DATE's scores)",
    )
    p.add_argument(
        "--reference-start",
        type=iso_date,
        help="compare with the scored population of the score dates from this day (with --reference-end) "
        "instead of the model's logged training reference, e.g. the month before",
    )
    p.add_argument("--reference-end", type=iso_date, help="last day of the reference period (inclusive)")
    p.add_argument("--no-mlflow", action="store_true", help="do not log the report to an MLflow monitoring run")
    p.set_defaults(handler=monitor)


def score(config: Config, args: argparse.Namespace) -> int:
    from pipelines.scoring import check_scoring_inputs, score_customers

    check_scoring_inputs(config)  # the warehouse is up and its tables match the contract, before the registry
    version = args.model_version
    if not version:
        from pipelines.registry import resolve_champion

        ref = resolve_champion(config)
        version = str(ref.version)
        logger.info("champion is %s version %s (run %s)", ref.name, version, ref.run_id)
    run_id = args.run_id or f"cli__{dt.datetime.now(dt.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"
    result = score_customers(config, args.date, version, run_id)
    emit(json.dumps(result, indent=2, default=str))
    return 0


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days >= 0, e.g. 3 or 0.5")
    return value


def sweep_staging(config: Config, args: argparse.Namespace) -> int:
    from pipelines.scoring.shards import OUTPUTS, STAGING_TABLES
    from pipelines.scoring.shards import sweep_staging as sweep
    from pipelines.warehouse import open_warehouse

    days = config.scoring.staging_retention_days if args.older_than_days is None else args.older_than_days
    with open_warehouse(config) as wh:
        wh.init_schema((*OUTPUTS, *STAGING_TABLES))
        swept = sweep(wh, None if args.stage_run else dt.timedelta(days=days), run_id=args.stage_run)
    emit(json.dumps({"swept": swept}, indent=2, default=str))
    return 0


def monitor(config: Config, args: argparse.Namespace) -> int:
    from pipelines.monitoring import monitor_scores, reference_period

    period = reference_period(args.reference_start, args.reference_end)  # both or neither, before any work
    version = args.model_version or _scored_version(config, args.date)
    result = monitor_scores(
        config,
        args.date,
        version,
        reference_start=period[0] if period else None,
        reference_end=period[1] if period else None,
        log_to_mlflow=not args.no_mlflow,
    )
    emit(json.dumps(result, indent=2, default=str))
    return 0


def _scored_version(config: Config, day: dt.date) -> str:
    from pipelines.monitoring import MonitoringError
    from pipelines.warehouse import open_warehouse

    with open_warehouse(config) as wh:
        frame = wh.query_df(
            wh.render(
                "SELECT model_version, COUNT(*) AS n FROM {churn_scores} "
                "WHERE score_date = :d GROUP BY model_version ORDER BY n DESC"
            ),
            {"d": day},
        )
    if frame.empty:
        raise MonitoringError(f"churn_scores has no rows for {day}; run `churn score --date {day}` first")
    return str(frame["model_version"].iloc[0])
