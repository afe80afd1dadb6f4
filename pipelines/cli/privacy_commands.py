"""Privacy and hand-over subcommands: forget-customer, export."""

from __future__ import annotations

import argparse
import logging

from pipelines.cli.common import emit
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
