"""Regenerate the README's table schema reference from the data contract (between the markers)."""

from pathlib import Path

from pipelines.config import PROJECT_ROOT
from pipelines.contract import ALL_TABLES, LATEST_SCORES_VIEW, SQL_TYPES

BEGIN, END = "<!-- schema:begin -->", "<!-- schema:end -->"


def render_schema_reference() -> str:
    lines = [BEGIN, ""]
    for table in ALL_TABLES:
        kind = "raw input, validated by Great Expectations" if table.raw else "written by the platform"
        lines.append(f"#### `{table.name}` ({kind})")
        lines.append("")
        lines.append(
            table.description
            + f" Key: `{', '.join(table.primary_key)}`."
            + (f" Replaced one `{table.partition_column}` partition at a time." if table.partition_column else "")
        )
        lines.append("")
        lines.append("| column | type | null | description |")
        lines.append("|---|---|---|---|")
        for col in table.columns:
            rule = ""
            if col.allowed_values:
                rule = f" One of: {', '.join(col.allowed_values)}."
            elif col.min_value is not None or col.max_value is not None:
                rule = f" Range: [{col.min_value if col.min_value is not None else ''}, {col.max_value if col.max_value is not None else ''}]."
            lines.append(
                f"| `{col.name}` | {SQL_TYPES[col.type]} | {'yes' if col.nullable else 'no'} | {col.description}{rule} |"
            )
        for fk in table.foreign_keys:
            lines.append(f"| | | | `{fk.column}` references `{fk.ref_table}.{fk.ref_column}` |")
        lines.append("")
    lines.append(f"#### `{LATEST_SCORES_VIEW}` (view)")
    lines.append("")
    lines.append("Each customer's most recent row of `churn_scores` (same columns).")
    lines.append("")
    lines.append(END)
    return "\n".join(lines)


def update_readme(readme: Path = PROJECT_ROOT / "README.md") -> bool:
    """Rewrite the block between the markers; returns True when the file changed."""
    text = readme.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    new = text[:start] + render_schema_reference() + text[end:]
    if new != text:
        readme.write_text(new)
    return new != text


if __name__ == "__main__":
    update_readme()
