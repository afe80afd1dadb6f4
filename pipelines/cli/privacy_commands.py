"""Privacy and analyst subcommands: forget-customer, export, sentiment."""

from __future__ import annotations

import argparse
import logging

from pipelines.cli.common import emit, iso_date
from pipelines.config import Config

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "forget-customer",
        help="delete one customer's rows from every warehouse table (one transaction)",
        description="Deletes the customer from customers, orders (and their items), events, reviews, scores, "
        "reasons and segments. MLflow artifacts hold pseudonymised ids only. Prints rows deleted per table.",
    )
    p.add_argument("customer_id", type=int, help="the customer's id in the warehouse")
    p.set_defaults(handler=forget_customer)

    p = subparsers.add_parser(
        "export",
        help="hand-over file for downstream tools: ids, tier, top reason, segment, recommended action",
        description="One CSV row per customer scored on --date, highest value at risk first. Columns: "
        "customer_id, score_date, churn_probability, risk_tier, value_at_risk, probability_change, top_reason_code, "
        "top_reason, segment_name, recommended_action (from the retention package when it decided one).",
    )
    p.add_argument("--for", dest="target", choices=["crm"], default="crm", help="the consumer (crm)")
    p.add_argument("--date", type=iso_date, required=True, help="score date, YYYY-MM-DD")
    p.add_argument(
        "--pseudonymise",
        action="store_true",
        help="replace customer ids by their keyed pseudonyms ($CHURN_PSEUDONYM_KEY, see README: Data protection)",
    )
    p.add_argument("--output", help="CSV file to write (default: stdout)")
    p.set_defaults(handler=export)

    p = subparsers.add_parser(
        "sentiment",
        help="train the review-sentiment head (stars as weak labels) and score every review before --as-of",
    )
    p.add_argument("--as-of", type=iso_date, required=True, help="only reviews before this day, YYYY-MM-DD")
    p.set_defaults(handler=sentiment)


def forget_customer(config: Config, args: argparse.Namespace) -> int:
    from pipelines.warehouse import open_warehouse
    from pipelines.warehouse.forget import forget_customer as forget
    from pipelines.warehouse.forget import remaining_rows

    with open_warehouse(config) as wh:
        deleted = forget(wh, args.customer_id)
        left = {t: n for t, n in remaining_rows(wh, args.customer_id).items() if n}
    emit(*(f"{table}\t{n}" for table, n in deleted.items()))
    if left:  # cannot happen after a committed delete; says so loudly if it ever does
        logger.error("customer %d still has rows in %s", args.customer_id, left)
        return 1
    emit(f"customer {args.customer_id}: no rows left in any warehouse table")
    return 0


def export(config: Config, args: argparse.Namespace) -> int:
    import sys

    from pipelines.scoring.export import crm_export
    from pipelines.warehouse import open_warehouse

    with open_warehouse(config) as wh:
        frame = crm_export(wh, config, args.date, pseudonymise=args.pseudonymise)
    if args.output:
        frame.to_csv(args.output, index=False)
        logger.info("wrote %d rows to %s", len(frame), args.output)
    else:
        frame.to_csv(sys.stdout, index=False)
    return 0


def sentiment(config: Config, args: argparse.Namespace) -> int:
    from pipelines.training.sentiment import score_review_sentiment

    report = score_review_sentiment(config, args.as_of)
    emit(*(f"{key}\t{value}" for key, value in report.items()))
    return 0
