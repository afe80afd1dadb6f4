"""Backend-neutral warehouse interface and the factory that picks a backend from a URL."""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pipelines.config import validate_identifier
from pipelines.contract import ALL_TABLES, CHURN_SCORES, LATEST_SCORES_VIEW, SQL_TYPES, ExitCode, Table
from pipelines.dates import as_date

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


logger = logging.getLogger(__name__)

_PARAM_RE = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
SUPPORTED_DIALECTS = ("duckdb", "postgresql", "spark")
DEFAULT_STAGING_GRACE_SECONDS = 900.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 10
# Contract type -> the engine types (information_schema.columns.data_type, lower case, without "(p,s)") that
# the feature SQL treats the same. Anything else is a retyped column.
_INTEGER_TYPES = frozenset({"bigint", "integer", "int", "smallint", "tinyint", "hugeint", "int8", "int4", "int2"})
COMPATIBLE_TYPES = {
    "bigint": _INTEGER_TYPES,
    "integer": _INTEGER_TYPES,
    "double": frozenset({"double", "double precision", "real", "float", "numeric", "decimal"}),
    "text": frozenset({"text", "varchar", "character varying", "character", "char", "string"}),
    "timestamptz": frozenset({"timestamp with time zone", "timestamptz"}),
    "date": frozenset({"date"}),
    "boolean": frozenset({"boolean", "bool"}),
}

# Fault injection for the crash tests: a partition replace calls ``fault_hook(stage)`` at each stage
# ("load": rows are being written; "key_build": the new partition's key is being built (Postgres);
# "swap": inside the transaction that makes the new day visible, before it commits). Tests set it to
# raise or to SIGKILL the process; it is None otherwise (one attribute check per stage).
FAULT_STAGES = ("load", "key_build", "swap")
fault_hook: Callable[[str], None] | None = None


def fault_point(stage: str) -> None:
    """Give an injected fault its chance to fire at ``stage`` (see ``FAULT_STAGES``)."""
    if fault_hook is not None:
        fault_hook(stage)


class WarehouseError(RuntimeError):
    """A warehouse operation failed; the message names the table and the operation."""

    exit_code = ExitCode.WAREHOUSE


class WarehouseUnavailableError(WarehouseError):
    """The warehouse cannot be reached or opened; the message names it (never with its password)."""


class SchemaMismatchError(WarehouseError):
    """A warehouse table does not match the contract: the message names table, column and what was expected."""


def one_line(text: object) -> str:
    """A driver's multi-line error text as one line (``churn`` prints one line per failure)."""
    return " ".join(str(text).split())


def quote_identifier(name: str) -> str:
    """Validate then double-quote an identifier (both dialects use ANSI quoting)."""
    validate_identifier(name)
    return f'"{name}"'


Params = Mapping[str, Any] | None


class Warehouse(abc.ABC):
    """A connection to one schema of one warehouse.

    Why a thin class of our own instead of raw SQLAlchemy: the fast paths (Arrow into DuckDB,
    COPY into Postgres) and the atomic partition replace need the native drivers.
    """

    dialect: str
    default_schema: str

    def __init__(
        self,
        schema: str | None,
        read_chunk_rows: int = 100_000,
        staging_grace_seconds: float = DEFAULT_STAGING_GRACE_SECONDS,
    ) -> None:
        self.schema = validate_identifier(schema or self.default_schema, "warehouse schema")
        self.read_chunk_rows = read_chunk_rows
        self.staging_grace_seconds = staging_grace_seconds

    # -- naming ---------------------------------------------------------------------------------
    def qualified(self, table: str) -> str:
        return f"{quote_identifier(self.schema)}.{quote_identifier(table)}"

    @property
    def tables(self) -> dict[str, str]:
        """Contract table name -> qualified, quoted name; for ``sql.format(**wh.tables)``."""
        names = {t.name: self.qualified(t.name) for t in ALL_TABLES}
        names[LATEST_SCORES_VIEW] = self.qualified(LATEST_SCORES_VIEW)
        return names

    def render(self, sql: str, **extra_tables: str) -> str:
        """Fill ``{table}`` placeholders with qualified names (extra names are validated too)."""
        names = self.tables
        names.update({key: self.qualified(value) for key, value in extra_tables.items()})
        return sql.format(**names)

    # -- primitives each backend implements -----------------------------------------------------
    @abc.abstractmethod
    def execute(self, sql: str, params: Params = None) -> None: ...

    @abc.abstractmethod
    def query_arrow(self, sql: str, params: Params = None) -> pa.Table: ...

    @abc.abstractmethod
    def iter_arrow(self, sql: str, params: Params = None, chunk_rows: int | None = None) -> Iterator[pa.Table]:
        """Stream a query's rows in Arrow chunks of at most ``chunk_rows`` (bounded memory)."""

    @abc.abstractmethod
    def _load_arrow(self, table: str, data: pa.Table) -> None:
        """Append Arrow rows to ``table`` inside the current transaction (fast path)."""

    @abc.abstractmethod
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def table_exists(self, table: str) -> bool: ...

    def location(self) -> str:
        """Where this warehouse is, for messages (no password)."""
        return f"{self.dialect} schema {self.schema}"

    def check_contract(self, tables: Sequence[Table]) -> None:
        """Refuse to go on when ``tables`` do not match the contract (before any query reads them).

        Why: a dropped, renamed or retyped column otherwise surfaces as a binder error deep inside the
        feature SQL. Extra columns are fine (queries name their columns). Raises :class:`SchemaMismatchError`
        naming every problem as ``table.column: what was found, what the contract expects``.
        """
        found = self._column_types(tables)
        problems = []
        for table in tables:
            columns = found.get(table.name)
            if columns is None:
                problems.append(f"table {table.name} is missing (run `churn init-warehouse`, then load data)")
                continue
            expected = {c.name for c in table.columns}
            extra = [name for name in columns if name not in expected]
            for column in table.columns:
                kind = columns.get(column.name)
                wanted = SQL_TYPES[column.type]
                if kind is None:
                    same_type = [e for e in extra if columns[e] in COMPATIBLE_TYPES[column.type]]
                    hint = f", found {', '.join(same_type)} instead (renamed?)" if same_type else ""
                    problems.append(f"{table.name}.{column.name}: column missing (expected {wanted}){hint}")
                elif kind not in COMPATIBLE_TYPES[column.type]:
                    problems.append(f"{table.name}.{column.name}: type {kind.upper()}, expected {wanted}")
        if problems:
            raise SchemaMismatchError(
                f"warehouse tables do not match the contract ({self.location()}): "
                + "; ".join(problems)
                + ". Restore the columns (or re-import the data); the contract is pipelines/contract.py"
            )

    def _column_types(self, tables: Sequence[Table]) -> dict[str, dict[str, str]]:
        """Table -> column -> engine type name (lower case, without ``(p,s)``) of the tables that exist."""
        names = [t.name for t in tables]
        found: dict[str, dict[str, str]] = {}
        rows = self.query_arrow(
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = :schema",
            {"schema": self.schema},
        ).to_pylist()
        for row in rows:
            if row["table_name"] in names:
                kind = re.sub(r"\(.*\)", "", str(row["data_type"])).strip().lower()
                found.setdefault(row["table_name"], {})[row["column_name"]] = kind
        return found

    # -- table DDL (the generator's staging swap; Spark does these on folders) --------------------
    def create_table(self, table: Table) -> None:
        self.execute(self.create_table_sql(table))

    def drop_table(self, name: str) -> None:
        self.execute(f"DROP TABLE IF EXISTS {self.qualified(name)}")

    def rename_table(self, source: str, target: str) -> None:
        self.execute(f"ALTER TABLE {self.qualified(source)} RENAME TO {quote_identifier(target)}")

    # -- derived operations ---------------------------------------------------------------------
    def query_df(self, sql: str, params: Params = None) -> pd.DataFrame:
        return self.query_arrow(sql, params).to_pandas()

    def iter_df(self, sql: str, params: Params = None, chunk_rows: int | None = None) -> Iterator[pd.DataFrame]:
        for chunk in self.iter_arrow(sql, params, chunk_rows):
            yield chunk.to_pandas()

    def scalar(self, sql: str, params: Params = None) -> Any:
        result = self.query_arrow(sql, params)
        return result.column(0)[0].as_py() if result.num_rows else None

    def row_count(self, table: str, where: str = "", params: Params = None) -> int:
        sql = f"SELECT COUNT(*) FROM {self.qualified(table)}" + (f" WHERE {where}" if where else "")
        return int(self.scalar(sql, params))

    def bulk_load(self, table: Table | str, data: pa.Table | pd.DataFrame) -> int:
        """Append rows in one transaction (all or nothing). Returns rows written."""
        table = _table(table)
        arrow = self._to_arrow(table, data)
        with self.transaction():
            self._load_arrow(table.name, arrow)
        logger.info("loaded %d rows into %s", arrow.num_rows, self.qualified(table.name))
        return arrow.num_rows

    def replace_partition(self, table: Table | str, data: pa.Table | pd.DataFrame, column: str, value: Any) -> int:
        """Atomically replace every row where ``column = value`` with ``data``.

        A rerun for the same date replaces (never duplicates), readers see either all the old rows of
        that value or all the new ones, and a failure midway leaves the previous rows intact. By default
        delete and insert run in one transaction; a backend may swap in a whole physical partition
        instead (PostgreSQL, for tables with ``native_partitions``).
        """
        table = _table(table)
        table.column(column)  # raises if the column is not in the contract
        arrow = self._to_arrow(table, data)
        _check_partition_values(table, arrow, column, value)
        how = self._replace_rows(table, arrow, column, value)
        logger.info("replaced %s partition %s=%s with %d rows (%s)", table.name, column, value, arrow.num_rows, how)
        return arrow.num_rows

    def replace_partitions(
        self, parts: Sequence[tuple[Table | str, pa.Table | pd.DataFrame]], column: str, value: Any
    ) -> dict[str, int]:
        """Replace the ``column = value`` partition of several tables as one atomic step; rows written per table.

        Why: one scoring run writes ``churn_scores``, ``churn_score_reasons`` and ``customer_segments``
        for a day; a reader (or a failure) must never see the new scores beside the old reasons. Readers
        see every table's old day or every table's new day, and a failure writing any of them leaves all
        of them as they were. Each table is checked as :meth:`replace_partition` checks it.
        """
        prepared = []
        for table, data in parts:
            table = _table(table)
            table.column(column)
            arrow = self._to_arrow(table, data)
            _check_partition_values(table, arrow, column, value)
            prepared.append((table, arrow))
        if len({t.name for t, _ in prepared}) != len(prepared):
            raise WarehouseError(f"replace_partitions({column}={value!r}): a table is named twice")
        how = self._replace_many(prepared, column, value)
        written = {t.name: a.num_rows for t, a in prepared}
        logger.info("replaced partition %s=%s of %s in one step (%s)", column, value, written, how)
        return written

    def _replace_many(self, parts: list[tuple[Table, pa.Table]], column: str, value: Any) -> str:
        """Delete + insert of every table in one transaction (the portable multi-table replace)."""
        with self.transaction():
            for table, arrow in parts:
                self.execute(
                    f"DELETE FROM {self.qualified(table.name)} WHERE {quote_identifier(column)} = :value",
                    {"value": value},
                )
                fault_point("load")
                self._load_arrow(table.name, arrow)
            fault_point("swap")
        return "delete + insert, one transaction"

    def _replace_rows(self, table: Table, arrow: pa.Table, column: str, value: Any) -> str:
        """Delete + insert in one transaction (the portable partition replace); returns how, for the log."""
        with self.transaction():
            self.execute(
                f"DELETE FROM {self.qualified(table.name)} WHERE {quote_identifier(column)} = :value", {"value": value}
            )
            fault_point("load")
            self._load_arrow(table.name, arrow)
            fault_point("swap")
        return "delete + insert"

    def replace_table(self, table: Table | str, data: pa.Table | pd.DataFrame) -> int:
        """Atomically replace a whole table's contents."""
        table = _table(table)
        arrow = self._to_arrow(table, data)
        with self.transaction():
            self.execute(f"DELETE FROM {self.qualified(table.name)}")
            self._load_arrow(table.name, arrow)
        return arrow.num_rows

    def init_schema(self, tables: Sequence[Table] = ALL_TABLES) -> None:
        """Create the schema, every contract table and the latest-scores view (idempotent)."""
        with self.transaction():
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(self.schema)}")
            for table in tables:
                self.execute(self.create_table_sql(table))
                self._add_missing_columns(table)
                for index_cols in table.indexes:
                    self._create_index(table, index_cols)
            self.execute(self.latest_scores_view_sql())
        for table in tables:
            if table.native_partitions:
                self.sweep_orphans(table)
        logger.info("warehouse schema %s ready (%d tables) on %s", self.schema, len(tables), self.dialect)

    def sweep_orphans(self, table: Table | str) -> list[str]:
        """Drop staging tables that killed writers left for ``table``; returns the names dropped.

        The portable replace (delete + insert in one transaction) stages nothing, so there is nothing to sweep:
        a killed writer's transaction is rolled back by the engine.
        """
        return []

    def _add_missing_columns(self, table: Table) -> None:
        """Nullable contract columns added after a table was created (ADD COLUMN IF NOT EXISTS on both engines)."""
        for col in table.columns:
            if col.nullable:
                self.execute(
                    f"ALTER TABLE {self.qualified(table.name)} ADD COLUMN IF NOT EXISTS "
                    f"{quote_identifier(col.name)} {SQL_TYPES[col.type]}"
                )

    def create_table_sql(self, table: Table) -> str:
        cols = [
            f"{quote_identifier(c.name)} {SQL_TYPES[c.type]}{'' if c.nullable else ' NOT NULL'}" for c in table.columns
        ]
        if self._enforce_primary_key(table):
            cols.append(f"PRIMARY KEY ({', '.join(quote_identifier(c) for c in table.primary_key)})")
        return (
            f"CREATE TABLE IF NOT EXISTS {self.qualified(table.name)} (\n  "
            + ",\n  ".join(cols)
            + "\n)"
            + self._partitioning_clause(table)
        )

    def latest_scores_view_sql(self) -> str:
        cols = ", ".join(quote_identifier(c) for c in CHURN_SCORES.column_names)
        return (
            f"CREATE OR REPLACE VIEW {self.qualified(LATEST_SCORES_VIEW)} AS "
            f"SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER "
            f"(PARTITION BY customer_id ORDER BY score_date DESC) AS _rank FROM {self.qualified(CHURN_SCORES.name)}) ranked "
            f"WHERE _rank = 1"
        )

    def drop_schema(self) -> None:
        """Drop the whole schema (tests and ``churn init-warehouse --reset``)."""
        with self.transaction():
            self.execute(f"DROP SCHEMA IF EXISTS {quote_identifier(self.schema)} CASCADE")

    # -- hooks ----------------------------------------------------------------------------------
    def _enforce_primary_key(self, table: Table) -> bool:
        """Raw tables are landing tables: keys are checked by validation, not constraints (bulk speed)."""
        return False

    def _create_index(self, table: Table, columns: tuple[str, ...]) -> None:
        return None

    def _partitioning_clause(self, table: Table) -> str:
        """DDL after the column list for ``native_partitions`` tables; engines without partitions add nothing."""
        return ""

    def _to_arrow(self, table: Table, data: pa.Table | pd.DataFrame) -> pa.Table:
        from pipelines.warehouse.arrow import conform_to_contract

        return conform_to_contract(table, data)

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(schema={self.schema!r})"


def _table(table: Table | str) -> Table:
    from pipelines.contract import get_table

    return table if isinstance(table, Table) else get_table(table)


def _check_partition_values(table: Table, arrow: pa.Table, column: str, value: Any) -> None:
    """Refuse rows of another partition: a replace of ``column = value`` writes only that value."""
    if arrow.num_rows:
        values = arrow.column(column).unique().to_pylist()
        if values != [value] and [_partition_day(v) for v in values] != [_partition_day(value)]:
            raise WarehouseError(
                f"replace_partition({table.name}.{column}={value!r}): data holds other {column} values {values[:5]}"
            )


def _partition_day(value: Any) -> Any:
    """A date-like partition value as its UTC date (other partition values unchanged)."""
    return as_date(value) if isinstance(value, dt.date | str) else value


def rebatch(batches, chunk_rows: int) -> Iterator[pa.Table]:
    """Regroup record batches into tables of exactly ``chunk_rows`` rows (the last may be shorter)."""
    import pyarrow as pa

    pending: list = []
    pending_rows = 0
    for batch in batches:
        while batch.num_rows:
            take = min(chunk_rows - pending_rows, batch.num_rows)
            pending.append(batch.slice(0, take))
            pending_rows += take
            batch = batch.slice(take)
            if pending_rows == chunk_rows:
                yield pa.Table.from_batches(pending)
                pending, pending_rows = [], 0
    if pending_rows:
        yield pa.Table.from_batches(pending)


def translate_params(sql: str, style: str) -> str:
    """Rewrite ``:name`` placeholders (not ``::casts``) to the driver's style."""
    if style == "duckdb":
        return _PARAM_RE.sub(r"$\1", sql)
    if style == "psycopg":
        return _PARAM_RE.sub(r"%(\1)s", sql.replace("%", "%%"))
    raise ValueError(style)
