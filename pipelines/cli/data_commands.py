"""Data subcommands: init-warehouse, generate, import, validate."""

from __future__ import annotations

import argparse
import logging

from pipelines.config import Config

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("init-warehouse", help="create the schema, tables and views (idempotent)")
    p.add_argument("--reset", action="store_true", help="drop the schema first (deletes all data)")
    p.set_defaults(handler=init_warehouse)


def init_warehouse(config: Config, args: argparse.Namespace) -> int:
    from pipelines.warehouse import open_warehouse

    with open_warehouse(config) as wh:
        if args.reset:
            wh.drop_schema()
        wh.init_schema()
        logger.info("warehouse ready: %r", wh)
    return 0
