"""DuckDB backend: the embedded default. Bulk loads go through Arrow with zero copies."""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.warehouse.base import (
    Params,
    Warehouse,
    WarehouseError,
    WarehouseUnavailableError,
    one_line,
    quote_identifier,
    rebatch,
    translate_params,
)

logger = logging.getLogger(__name__)
_view_counter = itertools.count()


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"
    default_schema = "main"

    def __init__(
        self, database: str, schema: str | None = None, read_chunk_rows: int = 100_000, memory_limit: str | None = None
    ) -> None:
        super().__init__(schema, read_chunk_rows)
        self.database = database
        try:
            if database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self.con = duckdb.connect(database)
        except (duckdb.Error, OSError) as exc:
            raise WarehouseUnavailableError(
                f"warehouse unavailable: cannot open DuckDB file {database} ({one_line(exc)}); check warehouse.url "
                "/ CHURN_WAREHOUSE_URL, and that no other process is writing the file"
            ) from exc
        # TIMESTAMPTZ values render and compare in UTC regardless of the machine's zone.
        self.con.execute("SET TimeZone = 'UTC'")
        if memory_limit:
            # Bounded memory for big feature builds: past the cap DuckDB spills to disk instead of growing.
            # The value is validated by the config (a size like 2GB); SET takes no bound parameters.
            if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", memory_limit):
                raise WarehouseError(f"invalid DuckDB memory limit {memory_limit!r}")
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self._depth = 0

    def execute(self, sql: str, params: Params = None) -> None:
        try:
            self.con.execute(translate_params(sql, "duckdb"), dict(params) if params else None)
        except duckdb.Error as exc:
            raise WarehouseError(f"DuckDB: {exc}\nSQL: {sql[:500]}") from exc

    def query_arrow(self, sql: str, params: Params = None) -> pa.Table:
        try:
            relation = self.con.sql(translate_params(sql, "duckdb"), params=dict(params) if params else None)
            return relation.to_arrow_table() if relation is not None else pa.table({})
        except duckdb.Error as exc:
            raise WarehouseError(f"DuckDB: {exc}\nSQL: {sql[:500]}") from exc

    def iter_arrow(self, sql: str, params: Params = None, chunk_rows: int | None = None) -> Iterator[pa.Table]:
        chunk_rows = chunk_rows or self.read_chunk_rows
        # A cursor of its own, so the caller can run other statements while it streams.
        cursor = self.con.cursor()
        try:
            cursor.execute("SET TimeZone = 'UTC'")
            relation = cursor.sql(translate_params(sql, "duckdb"), params=dict(params) if params else None)
            yield from rebatch(relation.to_arrow_reader(chunk_rows), chunk_rows)
        except duckdb.Error as exc:
            raise WarehouseError(f"DuckDB: {exc}\nSQL: {sql[:500]}") from exc
        finally:
            cursor.close()

    def _load_arrow(self, table: str, data: pa.Table) -> None:
        view = f"_incoming_{next(_view_counter)}"
        cols = ", ".join(quote_identifier(name) for name in data.column_names)
        self.con.register(view, data)
        try:
            self.con.execute(f"INSERT INTO {self.qualified(table)} ({cols}) SELECT {cols} FROM {view}")
        except duckdb.Error as exc:
            raise WarehouseError(f"DuckDB: loading {table} failed: {exc}") from exc
        finally:
            self.con.unregister(view)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        # Nested use joins the outer transaction: DuckDB has no savepoints.
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.con.begin()
        self._depth = 1
        try:
            yield
        except BaseException:
            self.con.rollback()
            raise
        else:
            self.con.commit()
        finally:
            self._depth = 0

    def drop_schema(self) -> None:
        """DuckDB's default schema `main` cannot be dropped: empty it instead."""
        if self.schema != self.default_schema:
            super().drop_schema()
            return
        objects = self.query_arrow(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = :schema",
            {"schema": self.schema},
        ).to_pylist()
        with self.transaction():
            for kind in ("VIEW", "BASE TABLE"):  # views first: they depend on tables
                for row in objects:
                    if row["table_type"] == kind:
                        keyword = "VIEW" if kind == "VIEW" else "TABLE"
                        self.execute(f"DROP {keyword} IF EXISTS {self.qualified(row['table_name'])} CASCADE")

    def table_exists(self, table: str) -> bool:
        return bool(
            self.scalar(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = :schema AND table_name = :table",
                {"schema": self.schema, "table": table},
            )
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.con.close()

    def location(self) -> str:
        return f"duckdb:///{self.database} schema {self.schema}"

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({self.database!r}, schema={self.schema!r})"
