"""A read-only SQLAlchemy dialect for DuckDB that Great Expectations can use.

Why not plain ``duckdb_engine``: three incompatibilities with GX 1.x on SQLAlchemy 2.1/DuckDB 2.0.

* GX runs a query, closes the connection, *then* fetches the rows. ``duckdb_engine`` opens a real
  DuckDB transaction per connection, and the rollback on close discards the pending result set,
  so every bundled metric comes back empty (``IndexError`` deep inside GX). Validation only reads,
  so this dialect runs in DuckDB's autocommit mode: begin/commit/rollback are no-ops.
* ``duckdb_engine`` opens the file with its own config (a user agent), and DuckDB refuses a second
  in-process connection to a file "with a different configuration": the CLI or a test holding a
  ``Warehouse`` open would break validation. Connections here are opened like the warehouse's.
* SQLAlchemy 2.1's PostgreSQL column reflection (inherited by ``duckdb_engine``) queries
  ``pg_catalog.pg_collation``, which DuckDB lacks, so column types cannot be read and
  ``expect_column_values_to_be_of_type`` crashes. Columns are reflected from
  ``information_schema.columns`` instead.

Registered as ``duckdb+churn_gx``; ``engine.dialect.name`` stays ``duckdb``.
"""

from __future__ import annotations

from typing import Any

import duckdb
import sqlalchemy as sa
from duckdb_engine import ConnectionWrapper
from duckdb_engine import Dialect as DuckDBEngineDialect
from sqlalchemy.dialects import registry

DRIVER = "churn_gx"

# information_schema.columns.data_type -> SQLAlchemy type (GX compares with isinstance).
_TYPES: dict[str, sa.types.TypeEngine] = {
    "BIGINT": sa.BIGINT(),
    "INTEGER": sa.INTEGER(),
    "SMALLINT": sa.SMALLINT(),
    "DOUBLE": sa.DOUBLE_PRECISION(),
    "FLOAT": sa.REAL(),
    "VARCHAR": sa.TEXT(),  # DuckDB's TEXT is an alias of VARCHAR
    "BOOLEAN": sa.BOOLEAN(),
    "DATE": sa.DATE(),
    "TIMESTAMP WITH TIME ZONE": sa.TIMESTAMP(timezone=True),
    "TIMESTAMP": sa.DATETIME(),  # naive: deliberately not a TIMESTAMP, so the contract's TIMESTAMPTZ check fails
}


class ChurnGXDuckDBDialect(DuckDBEngineDialect):
    driver = DRIVER
    supports_statement_cache = False

    def connect(self, *cargs: Any, **cparams: Any) -> ConnectionWrapper:
        # Open exactly like the warehouse layer (no config, no user agent): DuckDB refuses a second
        # connection to an open file "with a different configuration" within one process.
        conn = duckdb.connect(cparams["database"])
        conn.execute("SET TimeZone = 'UTC'")  # render TIMESTAMPTZ values in UTC like the warehouse layer
        return ConnectionWrapper(conn)

    def do_begin(self, dbapi_connection: Any) -> None:
        return None

    def do_commit(self, dbapi_connection: Any) -> None:
        return None

    def do_rollback(self, dbapi_connection: Any) -> None:
        return None

    def get_columns(self, connection: Any, table_name: str, schema: str | None = None, **kw: Any) -> list[dict]:
        rows = connection.execute(
            sa.text(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_schema = :schema AND table_name = :table ORDER BY ordinal_position"
            ),
            {"schema": schema or "main", "table": table_name},
        ).fetchall()
        return [
            {
                "name": name,
                "type": _TYPES.get(str(data_type).upper(), sa.types.NullType()),
                "nullable": is_nullable == "YES",
                "default": None,
            }
            for name, data_type, is_nullable in rows
        ]

    def get_pk_constraint(self, connection: Any, table_name: str, schema: str | None = None, **kw: Any) -> dict:
        return {"constrained_columns": [], "name": None}


def register() -> None:
    """Make ``duckdb+churn_gx://`` URLs resolvable (idempotent)."""
    registry.register(f"duckdb.{DRIVER}", __name__, "ChurnGXDuckDBDialect")
