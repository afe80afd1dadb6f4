"""Data subcommands: init-warehouse, generate, import."""

from __future__ import annotations

import argparse
import logging
import sys

from pipelines.cli.common import emit, iso_date
from pipelines.config import Config
from pipelines.contract import ExitCode

logger = logging.getLogger(__name__)


def _mapping(value: str) -> tuple[str, str]:
    name, sep, target = value.partition("=")
    if not sep or not name.strip() or not target.strip():
        raise argparse.ArgumentTypeError(f"{value!r} is not NAME=VALUE")
    return name.strip(), target.strip()


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("init-warehouse", help="create the schema, tables and views (idempotent)")
    p.add_argument("--reset", action="store_true", help="drop the schema first (deletes all data; asks first)")
    p.add_argument("--yes", action="store_true", help="with --reset: do not ask for confirmation (scripts, CI)")
    p.set_defaults(handler=init_warehouse)

    p = subparsers.add_parser(
        "generate",
        help="replace the raw tables with realistic, deterministic sample data",
        description="Simulate customers, orders, clickstream and reviews. Defaults come "
        "from the config's sample_data section. Replaces the six raw tables.",
    )
    p.add_argument("--customers", type=int, help="number of customers (default: sample_data.customers)")
    p.add_argument("--seed", type=int, help="random seed; the same seed gives identical data")
    p.add_argument("--start", type=iso_date, help="first day of history, YYYY-MM-DD")
    p.add_argument("--end", type=iso_date, help="last day of history, YYYY-MM-DD")
    p.add_argument("--drift-after", type=iso_date, help="prices rise and delivery worsens after this day")
    p.add_argument("--chunk-customers", type=int, default=20_000, help="customers simulated and loaded per chunk")
    p.set_defaults(handler=generate)

    p = subparsers.add_parser("import", help="import your own exports (CSV or Parquet) into the raw tables")
    kinds = p.add_subparsers(dest="import_kind", metavar="KIND", required=True)
    for kind, help_text in (
        ("transactions", "purchase log -> customers, orders, order_items, products"),
        ("events", "clickstream -> events"),
        ("reviews", "product reviews -> reviews"),
    ):
        k = kinds.add_parser(kind, help=help_text)
        k.add_argument("file", help="CSV (optionally .gz) or Parquet file")
        k.add_argument(
            "--map",
            dest="column_map",
            action="append",
            type=_mapping,
            default=[],
            metavar="FIELD=COLUMN",
            help="use file column COLUMN for contract field FIELD (repeatable), e.g. customer_id=user",
        )
        _add_format_options(k)
        replaced = "all raw tables" if kind == "transactions" else f"the {kind} table"
        k.add_argument("--replace", action="store_true", help=f"clear {replaced} first")
        if kind == "events":
            k.add_argument(
                "--event-map",
                action="append",
                type=_mapping,
                default=[],
                metavar="NAME=TYPE",
                help="map your event name to a contract event type, e.g. wishlist=view (repeatable)",
            )
        k.set_defaults(handler=import_file)


def _add_format_options(parser: argparse.ArgumentParser) -> None:
    """What the importer cannot decide from the whole file is declared here (it refuses, naming the option)."""
    group = parser.add_argument_group("file format (detected from the whole file unless given)")
    group.add_argument("--decimal", choices=(".", ","), help="decimal mark of the number columns")
    group.add_argument(
        "--thousands", choices=(",", ".", " ", "'", ""), help="thousands separator of the number columns ('' = none)"
    )
    group.add_argument(
        "--date-format", metavar="FORMAT", help="strftime format of the dates, e.g. '%%d/%%m/%%Y %%H:%%M'"
    )
    group.add_argument(
        "--dayfirst",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="dates are day/month/year (--no-dayfirst: month/day/year)",
    )
    group.add_argument("--encoding", help="text encoding when it is not UTF-8/UTF-16, e.g. latin-1 or cp1252")
    group.add_argument(
        "--columns",
        type=lambda v: tuple(c.strip() for c in v.split(",")),
        metavar="NAME,...",
        help="column names of a file without a header row, e.g. customer_id,timestamp,quantity,amount",
    )


def init_warehouse(config: Config, args: argparse.Namespace) -> int:
    from pipelines.warehouse import open_warehouse

    if args.reset and not args.yes and not _confirm_reset(config):
        emit("init-warehouse --reset: cancelled, nothing changed")
        return ExitCode.CONFIG
    with open_warehouse(config) as wh:
        if args.reset:
            wh.drop_schema()
        wh.init_schema()
        logger.info("warehouse ready: %r", wh)
    return 0


def _confirm_reset(config: Config) -> bool:
    """Ask before deleting every table; without a terminal to ask on, refuse (``--yes`` is how scripts say so)."""
    target = config.warehouse_url.split("@")[-1]  # never echo a password
    schema = config.warehouse_schema or "the default schema"
    if not sys.stdin.isatty():
        logger.error(
            "init-warehouse --reset deletes every table in %s (%s) and no terminal is attached to confirm: "
            "add --yes to proceed",
            schema,
            target,
        )
        return False
    answer = input(f"Delete every table in {schema} of {target}? Type 'yes' to confirm: ")
    return answer.strip().lower() == "yes"


def generate(config: Config, args: argparse.Namespace) -> int:
    from pipelines.data.generator import generate_sample_data
    from pipelines.warehouse import open_warehouse

    sample = config.sample_data
    start, end = args.start or sample.start, args.end or sample.end
    drift_after = args.drift_after or sample.drift_after
    customers = args.customers or sample.customers
    seed = sample.seed if args.seed is None else args.seed
    with open_warehouse(config) as wh:
        wh.init_schema()
        counts = generate_sample_data(
            wh,
            customers=customers,
            seed=seed,
            start=start,
            end=end,
            drift_after=drift_after,
            chunk_customers=args.chunk_customers,
        )
    lines = [
        f"generated sample data (seed {seed}, {start} .. {end}"
        + (f", drift after {drift_after}" if drift_after else "")
        + ")"
    ]
    lines += [f"  {table:<12} {rows:>12,}" for table, rows in counts.items()]
    emit(*lines)
    return 0


def import_file(config: Config, args: argparse.Namespace) -> int:
    from pipelines.data import importers
    from pipelines.data.formats import FormatError, ParseOptions
    from pipelines.warehouse import open_warehouse

    column_map = dict(args.column_map)
    try:
        options = ParseOptions(
            decimal=args.decimal,
            thousands=args.thousands,
            date_format=args.date_format,
            dayfirst=args.dayfirst,
            encoding=args.encoding,
            header=args.columns,
        )
    except FormatError as exc:
        raise importers.DataImportError(f"{args.file}: {exc}") from None
    with open_warehouse(config) as wh:
        if args.import_kind == "transactions":
            report = importers.import_transactions(wh, args.file, column_map, replace=args.replace, options=options)
        elif args.import_kind == "events":
            report = importers.import_events(
                wh, args.file, column_map, replace=args.replace, event_map=dict(args.event_map), options=options
            )
        else:
            report = importers.import_reviews(wh, args.file, column_map, replace=args.replace, options=options)
    lines = [
        f"imported {report.kind} from {report.path} ({report.rows_read:,} rows read"
        + (", raw tables replaced" if report.replaced and report.kind == "transactions" else "")
        + ")"
    ]
    lines += [f"  {table:<12} {rows:>12,} new rows" for table, rows in report.written.items()]
    emit(*lines)
    return 0
