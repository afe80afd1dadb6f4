"""Packages of ``pipelines`` import only downward: a new engineer can read the layers bottom-up.

The order (docs/ARCHITECTURE.md): contract and dates, config, warehouse and tracking, then
data / validation / features, datasets, models, training, evaluation, registry, scoring, monitoring,
retention, and the CLI and the operator views on top. Packages of one level never import each other.
Every import counts, also one inside a function: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PIPELINES = Path(__file__).resolve().parent.parent / "pipelines"

LAYERS: list[set[str]] = [
    {"contract", "dates", "xcom"},
    {"config"},
    {"warehouse", "tracking"},
    {"data", "validation", "features"},
    {"datasets"},
    {"models"},
    {"training"},
    {"evaluation"},
    {"registry"},
    {"scoring"},
    {"monitoring"},
    {"retention"},
    {"cli", "ops"},
]
LEVEL = {package: level for level, packages in enumerate(LAYERS) for package in packages}


def _package_of(path: Path, root: Path) -> str:
    return path.relative_to(root).parts[0].removesuffix(".py")


def _imported_packages(path: Path, root: Path = PIPELINES) -> set[tuple[str, int]]:
    """(top-level pipelines package, line) of every import in the file, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    own = path.relative_to(root.parent).with_suffix("").parts
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = own[: len(own) - node.level]
                names = [".".join((*base, node.module or ""))]
            elif node.module == "pipelines":
                names = [f"pipelines.{alias.name}" for alias in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "pipelines" and len(parts) > 1 and parts[1]:
                found.add((parts[1], node.lineno))
    return found


def import_violations(root: Path = PIPELINES) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        if path.parent == root and path.name in ("__init__.py", "__main__.py"):
            continue
        package = _package_of(path, root)
        if package not in LEVEL:
            problems.append(f"{path.relative_to(root)}: package {package!r} has no layer in tests/test_layers.py")
            continue
        for imported, line in sorted(_imported_packages(path, root)):
            if imported == package:
                continue
            if imported not in LEVEL:
                problems.append(f"{path.relative_to(root)}:{line} imports unknown package pipelines.{imported}")
            elif LEVEL[imported] >= LEVEL[package]:
                how = "sideways" if LEVEL[imported] == LEVEL[package] else "upward"
                problems.append(f"{path.relative_to(root)}:{line} imports {how}: {package} -> {imported}")
    return problems


def test_packages_import_only_downward():
    assert import_violations() == []


def test_the_contract_imports_nothing_of_ours():
    assert {name for name, _ in _imported_packages(PIPELINES / "contract.py")} == set()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("from pipelines.scoring import score_customers\n", "upward: models -> scoring"),
        ("from pipelines import training\n", "upward: models -> training"),
        ("from ..registry import versions\n", "upward: models -> registry"),
        ("from pipelines.features import build\n", "models -> features"),
    ],
)
def test_an_upward_import_is_reported(tmp_path, source, message):
    root = tmp_path / "pipelines"
    (root / "models").mkdir(parents=True)
    (root / "features").mkdir()
    (root / "models" / "bad.py").write_text(source)
    problems = import_violations(root)
    if message == "models -> features":  # downward: allowed
        assert problems == []
    else:
        assert len(problems) == 1 and message in problems[0]


def test_long_modules_say_why_they_are_long():
    """A module over ~400 lines is a sign it holds two concerns; the ones that do not say why in their docstring."""
    for path in sorted(PIPELINES.rglob("*.py")):
        if sum(1 for _ in path.open()) > 450:
            docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
            assert "Why one file over 400 lines" in docstring, f"{path.relative_to(PIPELINES)} is long and says not why"
