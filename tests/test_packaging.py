"""The wheel carries what a non-editable install needs: the Great Expectations suites and the SQL files.

Why: ``pip install .`` (the Docker image) has no source checkout to read ``expectations/`` from; a suite
missing from the wheel would only show up as a failed ``churn validate`` in production.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_contains_suites_and_package_data(tmp_path):
    source = tmp_path / "src"  # a clean copy: setuptools would reuse a stale build/ folder of the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("pipelines", "expectations"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    proc = subprocess.run([*command, str(source)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("churn_platform-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    suites = {p.name for p in (ROOT / "expectations").glob("*.py")}
    assert {f"expectations/{name}" for name in suites} <= names
    assert {f"pipelines/{p.relative_to(ROOT / 'pipelines')}" for p in (ROOT / "pipelines").rglob("*.sql")} <= names
    assert not any(name.startswith("tests/") for name in names)
