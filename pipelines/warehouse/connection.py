"""Opening a warehouse: the one place that knows which backend serves which URL.

Why apart from ``base``: the backends build on ``base``; the factory picks among them, so ``base`` never
imports its own subclasses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.warehouse.base import (
    DEFAULT_CONNECT_TIMEOUT_SECONDS,
    DEFAULT_STAGING_GRACE_SECONDS,
    SUPPORTED_DIALECTS,
    Warehouse,
    WarehouseError,
)

if TYPE_CHECKING:
    from pipelines.config import Config


def connect(
    url: str,
    schema: str | None = None,
    read_chunk_rows: int = 100_000,
    duckdb_memory_limit: str | None = None,
    staging_grace_seconds: float = DEFAULT_STAGING_GRACE_SECONDS,
    connect_timeout_seconds: int = DEFAULT_CONNECT_TIMEOUT_SECONDS,
) -> Warehouse:
    """Open a warehouse from a SQLAlchemy-style URL (``duckdb:///file``, ``postgresql://...``, ``spark+local:///dir``)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with little context
        raise WarehouseError(f"cannot parse the warehouse URL (warehouse.url / CHURN_WAREHOUSE_URL): {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "duckdb":
        from pipelines.warehouse.duckdb_backend import DuckDBWarehouse

        return DuckDBWarehouse(parsed.database or ":memory:", schema, read_chunk_rows, duckdb_memory_limit)
    if backend in ("postgresql", "postgres"):
        from pipelines.warehouse.postgres_backend import PostgresWarehouse

        return PostgresWarehouse(parsed, schema, read_chunk_rows, staging_grace_seconds, connect_timeout_seconds)
    if backend == "spark":
        return _spark(parsed, schema, read_chunk_rows)
    raise WarehouseError(
        f"warehouse dialect {backend!r} is not supported; use one of {SUPPORTED_DIALECTS} "
        "(feature SQL is tested on each)"
    )


def _spark(parsed, schema: str | None, read_chunk_rows: int) -> Warehouse:
    """``spark+local:///folder?master=...&spark.x=...``: Parquet tables under the folder (spark_backend)."""
    if parsed.drivername != "spark+local" or parsed.host or not parsed.database:
        raise WarehouseError(
            "a Spark warehouse URL is spark+local:///FOLDER (tables under FOLDER, relative to the project "
            "root; spark+local:////abs/path for an absolute one), optionally ?master=spark://host:7077"
        )
    query = dict(parsed.query)
    unknown = [key for key in query if key != "master" and not key.startswith("spark.")]
    if unknown:
        raise WarehouseError(f"warehouse URL: unknown Spark option(s) {unknown}: use master=... or spark.* settings")
    from pipelines.warehouse.spark_backend import SparkWarehouse

    master = str(query.pop("master", "local[*]"))
    return SparkWarehouse(parsed.database, schema, read_chunk_rows, master, {k: str(v) for k, v in query.items()})


def open_warehouse(config: Config, duckdb_memory_limit: str | None = None) -> Warehouse:
    """The warehouse named by the config (URL and schema may come from the environment).

    ``duckdb_memory_limit`` overrides ``warehouse.duckdb_memory_limit`` for this connection (a job's own cap).
    """
    return connect(
        config.warehouse_url,
        config.warehouse_schema,
        config.warehouse.read_chunk_rows,
        duckdb_memory_limit or config.warehouse.duckdb_memory_limit,
        config.warehouse.staging_grace_seconds,
        config.warehouse.connect_timeout_seconds,
    )
