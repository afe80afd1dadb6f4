"""Argument types shared by the `churn` subcommands."""

from __future__ import annotations

import argparse
import datetime as dt
import sys


def iso_date(text: str) -> dt.date:
    """argparse type for YYYY-MM-DD, with a message that says what was expected."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date (YYYY-MM-DD): {text!r}") from None


def emit(*lines: str) -> None:
    """Command results go to stdout (logs go to stderr), so they can be piped or parsed."""
    sys.stdout.write("\n".join(lines) + "\n")
