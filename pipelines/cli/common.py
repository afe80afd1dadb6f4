"""Argument types shared by the `churn` subcommands."""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import re
import sys


def iso_date(text: str) -> dt.date:
    """argparse type for YYYY-MM-DD, with a message that says what was expected."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: expected YYYY-MM-DD, e.g. 2026-01-31") from None


class Parser(argparse.ArgumentParser):
    """argparse with a suggestion for a mistyped subcommand (``churn scroe`` -> did you mean 'score'?).

    Subparsers inherit the class, so ``churn retention asign`` gets the same help."""

    def error(self, message: str):
        match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if match:
            choices = re.findall(r"'([^']*)'", match.group(2))
            close = difflib.get_close_matches(match.group(1), choices, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}?" if close else f"choose from {', '.join(choices)}"
            message = f"unknown command {match.group(1)!r}: {hint} (`{self.prog} --help` lists them)"
        super().error(message)


def emit(*lines: str) -> None:
    """Command results go to stdout (logs go to stderr), so they can be piped or parsed."""
    sys.stdout.write("\n".join(lines) + "\n")
