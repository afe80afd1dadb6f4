"""Model subcommands: train, models, compare, promote, rollback (MLflow tracking + registry)."""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Sequence
from typing import Any

from pipelines.cli.common import emit, iso_date
from pipelines.config import Config

logger = logging.getLogger(__name__)

METRIC_COLUMNS = ("pr_auc", "roc_auc", "brier", "log_loss", "ece", "lift_at_10", "capture_at_10")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="build training sets, fit transformer + baseline, log to MLflow, register, run the gate",
        description="Build the training sets as of DATE (or use --manifest), fit both candidates, log the run to "
        "MLflow, evaluate on test, register the chosen model as @challenger and run the promotion gate "
        "(it promotes only when registry.auto_promote is true).",
    )
    p.add_argument(
        "--as-of",
        required=True,
        type=iso_date,
        metavar="DATE",
        help="last day of observed data (YYYY-MM-DD)",
    )
    p.add_argument("--manifest", metavar="PATH", help="use existing training sets (manifest.json) instead of building")
    p.set_defaults(handler=train)

    p = subparsers.add_parser("models", help="list registered model versions with aliases and metrics")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=models)

    p = subparsers.add_parser("compare", help="compare two model versions (recorded and paired on the same data)")
    p.add_argument("a", metavar="A", help="model version")
    p.add_argument("b", metavar="B", help="model version")
    p.add_argument("--no-paired", action="store_true", help="only recorded metrics; do not re-score test data")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(handler=compare)

    p = subparsers.add_parser("promote", help="move the @champion alias to VERSION (records the previous champion)")
    p.add_argument("version", metavar="VERSION")
    p.add_argument("--reason", default="manual promotion via churn promote", help="recorded on the version")
    p.set_defaults(handler=promote)

    p = subparsers.add_parser("rollback", help="move @champion back to the version it replaced")
    p.set_defaults(handler=rollback)


# ---------------------------------------------------------------------------------------------- handlers


def train(config: Config, args: argparse.Namespace) -> int:
    from pipelines import evaluation, registry, training

    manifest = args.manifest
    if not manifest:
        from pipelines.datasets import build_training_sets
        from pipelines.training.sentiment import score_review_sentiment

        score_review_sentiment(config, args.as_of)  # the sentiment_* features read its head's values
        manifest = build_training_sets(config, args.as_of)
    run_id = training.train_and_log(config, str(manifest))
    test_metrics = evaluation.evaluate_run(config, run_id)
    version = registry.register_candidate(config, run_id)
    gate = registry.run_promotion_gate(config, version)

    emit(f"run {run_id}  ->  {config.registry.model_name} version {version} (@challenger)")
    emit(format_table(evaluation.summary_table(config, run_id), ["candidate", "split", *METRIC_COLUMNS]))
    emit(f"test PR-AUC of the registered model: {_fmt(test_metrics.get('pr_auc'))}")
    emit(f"promotion gate vs champion {gate.get('champion') or '(none)'}: {gate.get('decision')}")
    for reason in gate.get("reasons", []):
        emit(f"  - {reason}")
    return 0


def models(config: Config, args: argparse.Namespace) -> int:
    from pipelines.registry import list_versions

    rows = list_versions(config)
    if args.json:
        emit(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        emit(f"no versions of {config.registry.model_name!r} registered yet (run `churn train --as-of DATE`)")
        return 0
    for row in rows:
        row["aliases"] = ",".join(row["aliases"])
        row["gate"] = (row.get("gate") or "")[:40]
    emit(
        format_table(
            rows,
            [
                "version",
                "aliases",
                "kind",
                "as_of",
                "test_pr_auc",
                "test_roc_auc",
                "test_brier",
                "created",
                "run_id",
                "gate",
            ],
        )
    )
    return 0


def compare(config: Config, args: argparse.Namespace) -> int:
    from pipelines.registry import compare_versions

    result = compare_versions(config, args.a, args.b, paired=not args.no_paired)
    if args.json:
        emit(json.dumps(result, indent=2, default=str))
        return 0
    a, b = result["a"], result["b"]
    keys = ["kind", "as_of", "aliases", "created", "val_pr_auc", "test_pr_auc", "test_roc_auc", "test_brier"]
    rows = [{"": key, f"v{a['version']}": a.get(key), f"v{b['version']}": b.get(key)} for key in keys]
    emit("recorded (each on its own test split):")
    emit(format_table(rows, ["", f"v{a['version']}", f"v{b['version']}"]))
    paired = result.get("paired")
    if paired and "error" in paired:
        emit(f"paired comparison unavailable: {paired['error']}")
    elif paired:
        new, old = paired["newer"], paired["older"]
        emit(f"\npaired, both scored on version {new}'s test split ({paired['rows']} rows):")
        rows = [
            {
                "": metric,
                f"v{new}": paired[new][metric],
                f"v{old}": paired[old][metric],
                "diff": paired[new][metric] - paired[old][metric],
            }
            for metric in ("pr_auc", "roc_auc", "brier")
        ]
        emit(format_table(rows, ["", f"v{new}", f"v{old}", "diff"]))
        ci = paired["pr_auc_difference"]
        emit(
            f"PR-AUC v{new} - v{old}: bootstrap mean {_fmt(ci.get('mean'))}, 95% CI "
            f"[{_fmt(ci.get('ci_low'))}, {_fmt(ci.get('ci_high'))}]"
        )
    return 0


def promote(config: Config, args: argparse.Namespace) -> int:
    from pipelines.registry import promote as do_promote

    result = do_promote(config, args.version, reason=args.reason)
    name = config.registry.model_name
    if result["changed"]:
        emit(f"{name}: @champion -> version {result['version']} (was {result['previous'] or 'none'})")
    else:
        emit(f"{name}: version {result['version']} already is @champion")
    return 0


def rollback(config: Config, args: argparse.Namespace) -> int:
    from pipelines.registry import resolve_champion
    from pipelines.registry import rollback as do_rollback

    current = resolve_champion(config).version
    version = do_rollback(config)
    emit(f"{config.registry.model_name}: @champion rolled back from version {current} to version {version}")
    return 0


# ---------------------------------------------------------------------------------------------- tables


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4f}"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) or "-"
    return str(value) if value != "" else "-"


def format_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """Plain fixed-width table; columns absent from every row are dropped."""
    columns = [c for c in columns if any(c in row for row in rows)]
    cells = [[_fmt(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)
