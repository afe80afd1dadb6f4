"""The contract: one exit code per failure kind, and the README's table says the same."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.contract import ExitCode

README = Path(__file__).resolve().parents[2] / "README.md"


def test_exit_codes_are_distinct():
    # an IntEnum silently turns a repeated value into an alias of the first name
    assert len(ExitCode.__members__) == len({int(code) for code in ExitCode})


def test_readme_lists_every_exit_code():
    table = README.read_text().split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `(\d+)` \| `([A-Z_]+)` \|", table, flags=re.M))
    assert rows == {str(int(code)): code.name for code in ExitCode}
