"""Building blocks the suites in ``expectations/`` are written with.

Why helpers: foreign-key and freshness rules are SQL that depends on the warehouse schema and the
run's as-of date, and column types come from the contract; writing that SQL once here keeps the
per-table suite files short enough to read as a list of rules, one commented line each.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import great_expectations.expectations as gxe

from pipelines.config import validate_identifier
from pipelines.contract import Table

# Contract type -> the type name GX's expect_column_values_to_be_of_type accepts, per dialect.
# Postgres: GX compares the database's own type string. DuckDB: GX checks isinstance against the
# SQLAlchemy class of that name, as reflected by pipelines.validation.duckdb_dialect (which maps a
# naive TIMESTAMP to DATETIME, so only TIMESTAMP WITH TIME ZONE passes "TIMESTAMP").
GX_TYPE_NAMES = {
    "postgresql": {
        "bigint": "BIGINT",
        "integer": "INTEGER",
        "double": "DOUBLE PRECISION",
        "text": "TEXT",
        "timestamptz": "TIMESTAMP WITH TIME ZONE",
        "date": "DATE",
        "boolean": "BOOLEAN",
    },
    "duckdb": {
        "bigint": "BIGINT",
        "integer": "INTEGER",
        "double": "DOUBLE_PRECISION",
        "text": "TEXT",
        "timestamptz": "TIMESTAMP",
        "date": "DATE",
        "boolean": "BOOLEAN",
    },
}


@dataclass(frozen=True)
class SuiteContext:
    """What a suite needs to know about one validation run."""

    as_of: dt.date
    schema: str
    dialect: str = "duckdb"  # "duckdb" or "postgresql": type names differ
    freshness_days: int = 30
    require_non_empty: frozenset[str] = field(default_factory=lambda: frozenset({"customers", "orders"}))
    require_recent: frozenset[str] = field(default_factory=lambda: frozenset({"orders", "events"}))

    @property
    def end_exclusive(self) -> dt.datetime:
        """Midnight UTC after the as-of day: nothing may happen at or after it."""
        return dt.datetime.combine(self.as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)

    @property
    def latest_allowed(self) -> dt.datetime:
        """Last representable instant of the as-of day (UTC), for inclusive ``max_value`` checks."""
        return self.end_exclusive - dt.timedelta(microseconds=1)

    @property
    def window_start(self) -> dt.datetime:
        return self.end_exclusive - dt.timedelta(days=self.freshness_days)

    def table(self, name: str) -> str:
        """Quoted, schema-qualified name for SQL in ``UnexpectedRowsExpectation`` queries."""
        return f'"{validate_identifier(self.schema)}"."{validate_identifier(name)}"'

    def must_have_rows(self, table: str) -> bool:
        return table in self.require_non_empty

    def must_be_recent(self, table: str) -> bool:
        return table in self.require_recent


def _ts(value: dt.datetime) -> str:
    """A TIMESTAMPTZ literal both DuckDB and Postgres parse."""
    return f"CAST('{value.isoformat(sep=' ')}' AS TIMESTAMP WITH TIME ZONE)"


def columns_match_contract(table: Table) -> gxe.ExpectTableColumnsToMatchSet:
    return gxe.ExpectTableColumnsToMatchSet(column_set=table.column_names, exact_match=True)


def column_types(ctx: SuiteContext, table: Table) -> list[gxe.ExpectColumnValuesToBeOfType]:
    names = GX_TYPE_NAMES[ctx.dialect]
    return [gxe.ExpectColumnValuesToBeOfType(column=c.name, type_=names[c.type]) for c in table.columns]


def primary_key_unique(table: Table) -> gxe.ExpectColumnValuesToBeUnique | gxe.ExpectCompoundColumnsToBeUnique:
    if len(table.primary_key) == 1:
        return gxe.ExpectColumnValuesToBeUnique(column=table.primary_key[0])
    return gxe.ExpectCompoundColumnsToBeUnique(column_list=list(table.primary_key))


def required_not_null(table: Table) -> list[gxe.ExpectColumnValuesToNotBeNull]:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c.name) for c in table.columns if not c.nullable]


def in_contract_range(table: Table, column: str) -> gxe.ExpectColumnValuesToBeBetween:
    col = table.column(column)
    return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=col.min_value, max_value=col.max_value)


def in_allowed_values(table: Table, column: str) -> gxe.ExpectColumnValuesToBeInSet:
    return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(table.column(column).allowed_values or ()))


def not_after_as_of(ctx: SuiteContext, column: str) -> gxe.ExpectColumnValuesToBeBetween:
    return gxe.ExpectColumnValuesToBeBetween(column=column, max_value=ctx.latest_allowed)


def has_rows(ctx: SuiteContext, table: str) -> gxe.ExpectTableRowCountToBeBetween:
    """At least one row when the config requires it; otherwise recorded (min 0) but never failing."""
    return gxe.ExpectTableRowCountToBeBetween(min_value=1 if ctx.must_have_rows(table) else 0)


def foreign_key(
    ctx: SuiteContext, table: Table, column: str, *, only_if_parent_has_rows: bool = False
) -> gxe.UnexpectedRowsExpectation:
    """Rows whose ``column`` matches no parent key (nulls are not orphans: nullability is its own rule)."""
    fk = next(f for f in table.foreign_keys if f.column == column)
    key_cols = ", ".join(f'"{c}"' for c in dict.fromkeys((*table.primary_key, column)))
    parent = ctx.table(fk.ref_table)
    query = (
        f'SELECT {key_cols} FROM {{batch}} WHERE "{column}" IS NOT NULL '
        f'AND "{column}" NOT IN (SELECT "{fk.ref_column}" FROM {parent} WHERE "{fk.ref_column}" IS NOT NULL)'
    )
    if only_if_parent_has_rows:
        query += f" AND EXISTS (SELECT 1 FROM {parent})"
    return gxe.UnexpectedRowsExpectation(
        unexpected_rows_query=query,
        description=f"foreign key {table.name}.{column} -> {fk.ref_table}.{fk.ref_column}: orphan rows",
        meta={"column": column, "rule": "foreign_key"},
    )


def recent_rows(ctx: SuiteContext, table: str, time_column: str) -> gxe.UnexpectedRowsExpectation:
    """Fails (returns one row) when nothing happened in the freshness window before the as-of date.

    A table that may legitimately be empty (not in ``require_non_empty``) is exempt while empty.
    """
    in_window = (
        f'CASE WHEN "{time_column}" >= {_ts(ctx.window_start)} AND "{time_column}" < {_ts(ctx.end_exclusive)} '
        "THEN 1 ELSE 0 END"
    )
    query = (
        f"SELECT COUNT(*) AS rows_total, COALESCE(SUM({in_window}), 0) AS rows_in_window FROM {{batch}} "
        f"HAVING COALESCE(SUM({in_window}), 0) = 0"
    )
    if not ctx.must_have_rows(table):
        query += " AND COUNT(*) > 0"
    return gxe.UnexpectedRowsExpectation(
        unexpected_rows_query=query,
        description=(
            f"freshness: {table}.{time_column} needs a row in the {ctx.freshness_days} days up to "
            f"{ctx.as_of.isoformat()}"
        ),
        meta={"column": time_column, "rule": "freshness"},
    )


def finite_numbers(ctx: SuiteContext, table: Table) -> list[gxe.UnexpectedRowsExpectation]:
    """Rows holding NaN or +/-infinity in a floating-point column, one rule per column.

    Why a query: NaN compares greater than every number in DuckDB and Postgres, so range rules
    (``min_value=0``) let NaN and +inf through; ``IN`` with the three special values catches them on
    both engines (the value is cast to text so the report and Data Docs stay valid JSON).
    """
    del ctx  # same SQL on both engines
    special = ", ".join(f"CAST('{v}' AS DOUBLE PRECISION)" for v in ("NaN", "Infinity", "-Infinity"))
    keys = ", ".join(f'"{c}"' for c in table.primary_key)
    rules = []
    for col in (c for c in table.columns if c.type == "double"):
        query = f'SELECT {keys}, CAST("{col.name}" AS TEXT) AS "{col.name}" FROM {{batch}} WHERE "{col.name}" IN ({special})'
        rules.append(
            gxe.UnexpectedRowsExpectation(
                unexpected_rows_query=query,
                description=f"finite: {table.name}.{col.name} holds NaN or infinity",
                meta={"column": col.name, "rule": "finite"},
            )
        )
    return rules
