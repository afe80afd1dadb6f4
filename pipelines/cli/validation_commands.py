"""Validation subcommand: ``churn validate --as-of DATE [--table T ...]``."""

from __future__ import annotations

import argparse
import datetime as dt
import logging

from pipelines.cli.common import iso_date
from pipelines.config import Config

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "validate",
        help="check the raw warehouse tables with the Great Expectations suites (exit 3 on failure)",
        description="Run every raw-table suite in expectations/ as one GX checkpoint and rebuild Data Docs. "
        "Exits 3 and names each failing table.column and expectation when anything fails.",
    )
    p.add_argument(
        "--as-of",
        type=iso_date,
        default=None,
        help="run date: later timestamps are future data; freshness window ends here (default: today, UTC)",
    )
    p.add_argument(
        "--table",
        action="append",
        dest="tables",
        metavar="TABLE",
        help="validate only this raw table (repeatable; default: all)",
    )
    p.set_defaults(handler=validate)


def validate(config: Config, args: argparse.Namespace) -> int:
    from pipelines.validation import validate_warehouse

    as_of = args.as_of or dt.datetime.now(dt.UTC).date()
    # validate_warehouse logs the one-line summary with the Data Docs path. Failures raise
    # ValidationFailed (exit_code 3); main() logs its message, which lists every failure.
    validate_warehouse(config, as_of, args.tables)
    return 0
