"""Dataset subcommands: build-training-sets, show-features."""

from __future__ import annotations

import argparse
import logging

from pipelines.cli.common import emit, iso_date
from pipelines.config import Config

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "build-training-sets",
        help="features + labels at past cutoffs, split by time, written as Parquet with a manifest",
    )
    p.add_argument(
        "--as-of",
        required=True,
        type=iso_date,
        help="data date: the latest cutoff is as_of - churn.horizon_days (labels fully observed)",
    )
    p.set_defaults(handler=build_training_sets_command)

    p = subparsers.add_parser("show-features", help="print one customer's features and text view at a cutoff")
    p.add_argument("--customer", required=True, type=int, help="customer_id")
    p.add_argument("--as-of", required=True, type=iso_date, help="cutoff date: features use rows before 00:00 UTC")
    p.set_defaults(handler=show_features_command)


def build_training_sets_command(config: Config, args: argparse.Namespace) -> int:
    from pipelines.datasets import build_training_sets
    from pipelines.training.sentiment import score_review_sentiment

    score_review_sentiment(config, args.as_of)  # the sentiment_* features read its head's values
    path = build_training_sets(config, args.as_of)
    emit(path)
    return 0


def show_features_command(config: Config, args: argparse.Namespace) -> int:
    from pipelines.features import TEXT_COLUMN, customer_features, numeric_feature_names
    from pipelines.warehouse import open_warehouse

    with open_warehouse(config) as wh:
        frame = customer_features(wh, config, args.customer, args.as_of)
    if frame.empty:
        logger.error(
            "customer %d is not in the population at %s (no completed order in the %d days before)",
            args.customer,
            args.as_of,
            config.churn.population_days,
        )
        return 1
    row = frame.iloc[0]
    names = numeric_feature_names(config)
    width = max(len(n) for n in [*names, "acquisition_channel"])
    out = [f"customer {args.customer} at cutoff {args.as_of} (rows before {args.as_of} 00:00 UTC)"]
    out += [f"  {name:<{width}}  {row[name]:.4f}".rstrip("0").rstrip(".") for name in names]
    out += [f"  {name:<{width}}  {row[name]}" for name in ("tenure_band", "acquisition_channel")]
    out += ["text view (most recent first):", *(f"  {item}" for item in row[TEXT_COLUMN].split(" | "))]
    emit(*out)
    return 0
