"""Spark backend: the feature and text-view SQL on Spark SQL, over contract tables stored as Parquet.

URL ``spark+local:///data/spark-warehouse`` (a relative path is under the project root, like DuckDB's;
``spark+local:////abs/path`` for an absolute one). Query parameters: ``master`` (default ``local[*]``; ``spark://host:7077`` or
``yarn`` for a cluster whose executors see the same folder) and any ``spark.*`` setting, e.g.
``?master=local[2]&spark.driver.memory=4g``.

Storage: one folder per table, ``<path>/<schema>/<table>/``, holding Parquet files written by pyarrow
(timestamps as UTC instants); each query reads them through a temporary view per table, declared with
the contract's schema. Why Parquet folders and no metastore: any Spark (local, a cluster, Databricks, EMR)
reads them, there is no catalog service to run, and a Hive/Derby metastore adds a minute to each start.

What is atomic (there are no multi-statement transactions): every file is written under a hidden name
and renamed into place, so a reader sees a whole file or none. Loads append files. Tables with a
``partition_column`` keep one file per value, so :meth:`replace_partition` is one rename (the day is
replaced whole, never mixed); several tables' days in one step (``replace_partitions``) are refused, as
there is no transaction to make them change together. :meth:`replace_table` and the generator's staging swap rename folders: a
reader in that instant may find the table empty. ``UPDATE``/``DELETE`` statements are not supported (Spark
refuses them on Parquet); for those, use a Delta Lake table (README: the Databricks / EMR scoring job).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.contract import ALL_TABLES, CHURN_SCORES, LATEST_SCORES_VIEW, Table
from pipelines.warehouse.arrow import arrow_schema
from pipelines.warehouse.base import (
    COMPATIBLE_TYPES,
    Params,
    Warehouse,
    WarehouseError,
    WarehouseUnavailableError,
    _table,
    fault_point,
    one_line,
    quote_identifier,
    rebatch,
)
from pipelines.warehouse.spark_sql import SparkTranslationError, to_spark_sql

logger = logging.getLogger(__name__)

# Settings every session gets: instants in UTC (TIMESTAMP is an instant type, shown in the session zone),
# ANSI semantics with "double-quoted" identifiers like the other engines, no UI or progress bars.
BASE_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.ansi.doubleQuotedIdentifiers": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}
_session_lock = threading.Lock()
_session_key: tuple | None = None


def spark_session(master: str = "local[*]", conf: Mapping[str, str] | None = None):
    """The process's one SparkSession (started on first use; later calls reuse it).

    Why one per process: a JVM and its executors take seconds to start, and Spark allows one
    SparkContext per process anyway. A later call asking for other settings gets the running session
    with a warning (the settings of a running JVM cannot change).
    """
    global _session_key
    # local mode: few shuffle partitions (the default 200 are for clusters)
    local = {"spark.sql.shuffle.partitions": str(2 * (os.cpu_count() or 1))} if master.startswith("local") else {}
    settings = {**BASE_CONF, **local, **(conf or {})}
    key = (master, tuple(sorted(settings.items())))
    with _session_lock:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:  # pragma: no cover - pyspark is a dependency
            raise WarehouseUnavailableError("the spark backend needs pyspark (pip install pyspark)") from exc
        active = SparkSession.getActiveSession()
        if active is not None and _session_key is not None:
            if key != _session_key:
                logger.warning("a SparkSession is already running; reusing it (its settings stay as they are)")
            return active
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no warning about the host's loopback name
        if master.startswith("local"):  # Python workers (spark_udf) run this interpreter, not `python3` on PATH
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = SparkSession.builder.master(master).appName("churn-platform")
        for name, value in settings.items():
            builder = builder.config(name, value)
        started = time.perf_counter()
        try:
            session = builder.getOrCreate()
        except Exception as exc:
            raise WarehouseUnavailableError(
                f"warehouse unavailable: cannot start Spark ({one_line(exc)[:300]}); Spark needs Java 17 or 21 "
                "(scripts/install_system_deps.sh installs openjdk-17-jre-headless)"
            ) from exc
        session.sparkContext.setLogLevel("ERROR")
        _session_key = key
        logger.info(
            "SparkSession %s started in %.1f s (Spark %s)", master, time.perf_counter() - started, session.version
        )
        return session


def _spark_error(exc: Exception, sql: str) -> WarehouseError:
    """A Spark failure as one line: its error class and message, without the JVM stack."""
    text = str(exc).strip().splitlines()
    first = next((line for line in text if line.strip()), type(exc).__name__)
    return WarehouseError(f"Spark: {one_line(first)[:500]}\nSQL: {sql[:500]}")


def _arrow_kind(kind: pa.DataType) -> str:
    """An Arrow column type as the engine type name ``check_contract`` compares (base.COMPATIBLE_TYPES)."""
    if pa.types.is_integer(kind):
        return "bigint" if kind.bit_width == 64 else "integer"
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "double"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "text"
    if pa.types.is_timestamp(kind):
        return "timestamptz" if kind.tz else "timestamp without time zone"
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_boolean(kind):
        return "boolean"
    return str(kind)


class SparkWarehouse(Warehouse):
    dialect = "spark"
    default_schema = "main"

    def __init__(
        self,
        path: str,
        schema: str | None = None,
        read_chunk_rows: int = 100_000,
        master: str = "local[*]",
        conf: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(schema, read_chunk_rows)
        self.path = Path(path)
        self.root = self.path / self.schema
        self.master = master
        self.conf = dict(conf or {})

    @property
    def spark(self):
        """The process's SparkSession, started at the first query (loads, DDL and contract checks need none)."""
        return spark_session(self.master, self.conf)

    # -- naming: one temporary view per table, "<schema>__<table>" ---------------------------------
    def qualified(self, table: str) -> str:
        return quote_identifier(f"{self.schema}__{table}")

    def folder(self, table: str) -> Path:
        quote_identifier(table)  # validates
        return self.root / table

    def _files(self, table: str) -> list[Path]:
        folder = self.folder(table)
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.suffix == ".parquet" and not p.name.startswith((".", "_")))

    def _register_views(self) -> None:
        """(Re)declare a view per existing table folder, so each query sees the files as they are now."""
        for table in ALL_TABLES:
            folder = self.folder(table.name)
            if not folder.is_dir():
                continue
            from pyspark.sql.pandas.types import from_arrow_schema

            frame = self.spark.read.schema(from_arrow_schema(arrow_schema(table))).parquet(str(folder))
            frame.createOrReplaceTempView(f"{self.schema}__{table.name}")
        if self.folder(CHURN_SCORES.name).is_dir():
            body = self.latest_scores_view_sql().split(" AS ", 1)[1]
            self.spark.sql(f"CREATE OR REPLACE TEMPORARY VIEW {self.qualified(LATEST_SCORES_VIEW)} AS {body}")

    # -- primitives -------------------------------------------------------------------------------
    def _frame(self, sql: str, params: Params):
        try:
            spark_sql = to_spark_sql(sql)
        except SparkTranslationError as exc:
            raise WarehouseError(f"Spark: {exc}") from exc
        try:
            self._register_views()
            return self.spark.sql(spark_sql, args=dict(params) if params else None)
        except Exception as exc:
            raise _spark_error(exc, sql) from exc

    def execute(self, sql: str, params: Params = None) -> None:
        try:
            self._frame(sql, params).collect()
        except WarehouseError:
            raise
        except Exception as exc:
            raise _spark_error(exc, sql) from exc

    def query_arrow(self, sql: str, params: Params = None) -> pa.Table:
        frame = self._frame(sql, params)
        try:
            return frame.toArrow()
        except Exception as exc:
            raise _spark_error(exc, sql) from exc

    def iter_arrow(self, sql: str, params: Params = None, chunk_rows: int | None = None) -> Iterator[pa.Table]:
        """The result in chunks; collected on the driver first (callers bound a query by customer-id slices)."""
        yield from rebatch(self.query_arrow(sql, params).to_batches(), chunk_rows or self.read_chunk_rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """No multi-statement transactions on Parquet: each file write is atomic on its own (module doc)."""
        yield

    def close(self) -> None:
        """The SparkSession stays up for the process's next connection (starting one takes seconds)."""

    def table_exists(self, table: str) -> bool:
        return self.folder(table).is_dir() or (table == LATEST_SCORES_VIEW and self.folder(CHURN_SCORES.name).is_dir())

    def location(self) -> str:
        return f"spark {self.path} schema {self.schema} (master {self.master})"

    def __repr__(self) -> str:
        return f"SparkWarehouse({str(self.path)!r}, schema={self.schema!r})"

    # -- writes -----------------------------------------------------------------------------------
    def _write_file(self, data: pa.Table, target: Path) -> None:
        """Write under a hidden name in the same folder, then rename into place (atomic on one file system)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        hidden = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            pq.write_table(data, hidden)
            os.replace(hidden, target)
        finally:
            hidden.unlink(missing_ok=True)

    def _partition_file(self, table: str, column: str, value: Any) -> Path:
        return self.folder(table) / f"{column}={quote(str(value), safe='')}.parquet"

    def _load_arrow(self, table: str, data: pa.Table) -> None:
        if not self.folder(table).is_dir():
            raise WarehouseError(f"Spark: table {table} does not exist in {self.root} (run `churn init-warehouse`)")
        if not data.num_rows:
            return
        column = _partition_column(table)
        if column is None:
            self._write_file(data, self.folder(table) / f"part-{time.time_ns():x}-{uuid.uuid4().hex[:8]}.parquet")
            return
        for value in data.column(column).unique().to_pylist():  # one file per value: merge into it
            rows = data.filter(pc.equal(data.column(column), pa.scalar(value, data.schema.field(column).type)))
            target = self._partition_file(table, column, value)
            if target.exists():
                rows = pa.concat_tables([pq.read_table(target, schema=data.schema), rows])
            self._write_file(rows, target)

    def _replace_rows(self, table: Table, arrow: pa.Table, column: str, value: Any) -> str:
        target = self._partition_file(table.name, column, value)
        if column != table.partition_column:
            raise WarehouseError(
                f"Spark: replace_partition({table.name}.{column}) needs the table's partition column "
                f"{table.partition_column}"
            )
        fault_point("load")
        if arrow.num_rows:
            self._write_file(arrow, target)
        else:
            target.unlink(missing_ok=True)
        fault_point("swap")
        return "one-file rename"

    def _replace_many(self, parts: list[tuple[Table, pa.Table]], column: str, value: Any) -> str:
        """Refused: one rename per file cannot make several tables' days change together."""
        raise WarehouseError(
            f"Spark: replacing {column}={value} of {', '.join(t.name for t, _ in parts)} as one atomic step needs "
            "a table format with transactions (Delta Lake); score on Spark with the spark_udf job (README)"
        )

    def replace_table(self, table: Table | str, data: Any) -> int:
        table = _table(table)
        arrow = self._to_arrow(table, data)
        staged = f"_replace_{table.name}_{uuid.uuid4().hex[:8]}"
        self.folder(staged).mkdir(parents=True)
        self._write_file(arrow, self.folder(staged) / "part-0.parquet")
        self._swap_folder(staged, table.name)
        return arrow.num_rows

    def _swap_folder(self, source: str, target: str) -> None:
        old = self.folder(target)
        trash = self.root / f".trash-{target}-{uuid.uuid4().hex[:8]}"
        if old.exists():
            os.rename(old, trash)
        os.rename(self.folder(source), old)
        shutil.rmtree(trash, ignore_errors=True)

    def create_table(self, table: Table) -> None:
        self.folder(table.name).mkdir(parents=True, exist_ok=True)

    def drop_table(self, name: str) -> None:
        shutil.rmtree(self.folder(name), ignore_errors=True)

    def rename_table(self, source: str, target: str) -> None:
        if self.folder(target).exists():
            raise WarehouseError(f"Spark: cannot rename {source} to {target}: {target} exists")
        os.rename(self.folder(source), self.folder(target))

    def init_schema(self, tables: Sequence[Table] = ALL_TABLES) -> None:
        for table in tables:
            self.create_table(table)
        logger.info("warehouse schema %s ready (%d tables) on spark at %s", self.schema, len(tables), self.root)

    def drop_schema(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _column_types(self, tables: Sequence[Table]) -> dict[str, dict[str, str]]:
        """Each table's columns and types as its Parquet files hold them (a file that disagrees wins)."""
        found: dict[str, dict[str, str]] = {}
        for table in tables:
            if not self.folder(table.name).is_dir():
                continue
            columns = found.setdefault(table.name, {})
            expected = {c.name: COMPATIBLE_TYPES[c.type] for c in table.columns}
            for path in self._files(table.name) or [None]:
                schema = pq.read_schema(path) if path is not None else arrow_schema(table)
                for field in schema:
                    kind = _arrow_kind(field.type)
                    if field.name not in columns or kind not in expected.get(field.name, ()):
                        columns[field.name] = kind
        return found


def _partition_column(table: str) -> str | None:
    from pipelines.contract import get_table

    try:
        return get_table(table).partition_column
    except (KeyError, ValueError):
        return None
