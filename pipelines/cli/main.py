"""`churn` command line: one entry point for data, training, scoring and monitoring jobs.

Each concern registers its subcommands from its own module (``pipelines/cli/<concern>.py``), and
handlers import heavy libraries lazily so ``churn --help`` stays instant.

Every failure ends in one ``churn <command>: ...`` line on stderr (what failed, where, what to do) and a
documented exit code (:class:`pipelines.contract.ExitCode`); the traceback is printed only with ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from pipelines.cli.common import Parser
from pipelines.config import ConfigError, load_config
from pipelines.contract import ExitCode

# Modules that define `register(subparsers)`; order is the order in `churn --help`.
COMMAND_MODULES = (
    "pipelines.cli.data_commands",  # init-warehouse, generate, import
    "pipelines.cli.validation_commands",  # validate
    "pipelines.cli.dataset_commands",  # build-training-sets, show-features
    "pipelines.cli.model_commands",  # train, models, compare, promote, rollback
    "pipelines.cli.ops_commands",  # score, monitor
    "pipelines.cli.retention_commands",  # retention assign|simulate|measure|learn|effects
    "pipelines.cli.privacy_commands",  # forget-customer, export
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="churn",
        description="Churn and retention ML platform: warehouse, validation, training, registry, scoring, monitoring.",
    )
    parser.add_argument("--config", help="YAML config (default: $CHURN_CONFIG or configs/default.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="print the traceback of a failure (and debug logging)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a concern not built yet
                continue
            raise
        module.register(subparsers)
    return parser


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("urllib3", "filelock", "matplotlib", "great_expectations", "alembic", "httpx", "git"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose or args.debug)
    log = logging.getLogger("churn")
    try:
        config = load_config(args.config)
        return int(args.handler(config, args) or 0)
    except ConfigError as exc:
        return _fail(log, args, exc, ExitCode.CONFIG)
    except KeyboardInterrupt:
        log.error("churn %s: interrupted", args.command)
        return ExitCode.INTERRUPTED
    except Exception as exc:
        # Known, user-facing failures carry `exit_code`; anything else is a bug: exit 1, traceback with --debug.
        code = getattr(exc, "exit_code", None)
        if code is None and isinstance(exc, OSError) and exc.filename:
            code = ExitCode.FILE
        return _fail(log, args, exc, ExitCode.FAILED if code is None else int(code))


def failure_message(exc: BaseException, code: int) -> str:
    """The line a failure is reported with; a warehouse error's SQL text stays out of it (--debug shows it)."""
    if code == ExitCode.FAILED:
        return f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())} (rerun with --debug for the traceback)"
    if code == ExitCode.FILE and isinstance(exc, OSError):
        return f"cannot access {exc.filename}: {exc.strerror or exc} (check the path and its permissions)"
    text = str(exc)
    if code == ExitCode.WAREHOUSE:  # driver texts span lines: DETAIL, HINT, the failing SQL
        text = " ".join(text.split("\nSQL:")[0].split())
    return text


def _fail(log: logging.Logger, args: argparse.Namespace, exc: BaseException, code: int) -> int:
    if args.debug:
        log.debug("traceback of the failure below", exc_info=exc)
    log.error("churn %s: %s", args.command, failure_message(exc, code))
    return code


if __name__ == "__main__":
    sys.exit(main())
