"""The canonical warehouse SQL as Spark SQL: the few dialect differences, in one place.

The platform writes each query once, in the ANSI/PostgreSQL text that DuckDB and PostgreSQL run as is
(``:name`` bound parameters, ``FILTER (WHERE ...)``, ``PERCENTILE_CONT ... WITHIN GROUP``, ``CHR``,
``LEFT``, ``CONCAT_WS``, ``||``, ``VALUES`` with a column list). Spark SQL 4 runs all of that too, with the
same named-parameter syntax, except for the constructs :data:`RULES` rewrite:

- the type names ``DOUBLE PRECISION``, ``TEXT`` and ``TIMESTAMPTZ`` (Spark: ``DOUBLE``, ``STRING``,
  ``TIMESTAMP``, which is instant semantics like ``TIMESTAMPTZ`` with the session time zone pinned to UTC);
- ``EXTRACT(EPOCH FROM ts)`` and ``EXTRACT(EPOCH FROM (a - b))`` (Spark has no EPOCH field and no
  interval-to-seconds extraction): ``unix_micros`` differences in seconds, as DOUBLE.

Why rewrite rules instead of sqlglot or a dialect argument through every query builder: the differences
are these five shapes, which the builders emit through :mod:`pipelines.features.sql_common` in a fixed
form; a transpiler would re-print the whole 300-line query and bring its own bugs, and a dialect argument
would thread through every fragment for five words. Anything the rules do not know and Spark would
reject (an EPOCH extraction of another shape, a ``::`` cast) is refused here with its position, so a new
construct fails at translation, not as a Spark parse error deep in a DAG run.
"""

from __future__ import annotations

import re

_OPERAND = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?"  # a column, optionally qualified

# (pattern, replacement, what it rewrites); applied in order.
RULES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (
        re.compile(rf"EXTRACT\(EPOCH FROM \(({_OPERAND}) - ({_OPERAND})\)\)"),
        r"(CAST(unix_micros(\1) - unix_micros(\2) AS DOUBLE) / 1E6)",
        "seconds between two instants",
    ),
    (
        re.compile(rf"EXTRACT\(EPOCH FROM ({_OPERAND})\)"),
        r"(CAST(unix_micros(\1) AS DOUBLE) / 1E6)",
        "seconds since 1970-01-01 UTC",
    ),
    (re.compile(r"\bAS DOUBLE PRECISION\)"), "AS DOUBLE)", "the DOUBLE type name"),
    (re.compile(r"\bAS TEXT\)"), "AS STRING)", "the STRING type name"),
    (re.compile(r"\bAS TIMESTAMPTZ\)"), "AS TIMESTAMP)", "the instant type name"),
)

# What must not survive translation (Spark rejects it or reads it differently).
_LEFTOVERS = (
    (re.compile(r"EXTRACT\(\s*EPOCH", re.IGNORECASE), "EXTRACT(EPOCH ...) of an unsupported shape"),
    (re.compile(r"(?<!:):(?=:)"), "a :: cast (write CAST(x AS type))"),
    (re.compile(r"\b(DOUBLE PRECISION|TIMESTAMPTZ)\b", re.IGNORECASE), "a type name outside CAST(... AS type)"),
)


class SparkTranslationError(ValueError):
    """The SQL holds a construct with no Spark rewrite; the message names it and where it is."""


def _strip_literals(sql: str) -> str:
    """The SQL with string literals blanked (same length), so checks never match inside quoted text."""
    return re.sub(r"'(?:[^']|'')*'", lambda m: "'" + " " * (len(m.group(0)) - 2) + "'", sql)


def to_spark_sql(sql: str) -> str:
    """``sql`` (the canonical text, ``{table}`` placeholders already rendered) as Spark SQL.

    Rules apply outside string literals only; raises :class:`SparkTranslationError` on a leftover.
    """
    pieces = re.split(r"('(?:[^']|'')*')", sql)  # odd indexes are literals
    for i in range(0, len(pieces), 2):
        for pattern, replacement, _ in RULES:
            pieces[i] = pattern.sub(replacement, pieces[i])
    out = "".join(pieces)
    code = _strip_literals(out)
    for pattern, what in _LEFTOVERS:
        match = pattern.search(code)
        if match:
            line = code.count("\n", 0, match.start()) + 1
            context = out[max(0, match.start() - 40) : match.end() + 40].replace("\n", " ")
            raise SparkTranslationError(f"no Spark SQL rewrite for {what} at line {line}: ...{context}...")
    return out
