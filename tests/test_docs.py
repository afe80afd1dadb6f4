"""The README's schema reference and the default config are generated: they must match the code."""

from pipelines.config import PROJECT_ROOT
from scripts.gen_schema_docs import BEGIN, END, render_schema_reference


def test_readme_schema_reference_matches_contract():
    text = (PROJECT_ROOT / "README.md").read_text()
    block = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert block == render_schema_reference(), "run: python scripts/gen_schema_docs.py"


def test_readme_has_the_two_quick_start_commands():
    text = (PROJECT_ROOT / "README.md").read_text()
    assert "make demo" in text and "make test" in text
