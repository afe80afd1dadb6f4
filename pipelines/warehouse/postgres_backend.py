"""PostgreSQL backend: bulk loads stream Arrow-encoded binary COPY; daily outputs swap whole partitions.

Why one file over 400 lines: the partition swap, its staging tables, their sweep and the advisory locks
are one protocol; each step's safety depends on the others.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from pipelines.config import validate_identifier
from pipelines.contract import Table
from pipelines.dates import as_date
from pipelines.warehouse import pgcopy
from pipelines.warehouse.base import (
    DEFAULT_CONNECT_TIMEOUT_SECONDS,
    DEFAULT_STAGING_GRACE_SECONDS,
    Params,
    SchemaMismatchError,
    Warehouse,
    WarehouseError,
    WarehouseUnavailableError,
    _table,
    fault_point,
    one_line,
    quote_identifier,
    translate_params,
)

logger = logging.getLogger(__name__)
_cursor_counter = itertools.count()
COPY_BATCH_ROWS = 50_000
MAX_IDENTIFIER = 63  # Postgres truncates longer names (NAMEDATALEN - 1)
# A staging table's name ends in __load<day>_<created, unix seconds in hex>_<writer token>; an older version
# named it __load<day> (no creation time: swept once its day's lock is free).
_STAGING_SUFFIX_RE = re.compile(r"__load(\d{8})(?:_([0-9a-f]{1,12})_([0-9a-f]{6}))?$")


def _psycopg():
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a dependency
        raise WarehouseError("the postgres backend needs psycopg 3 (pip install 'psycopg[binary]')") from exc
    return psycopg


_CHECK = quote_identifier("staged_day")  # the staging table's CHECK (day = D): ATTACH then skips its scan


@dataclasses.dataclass(frozen=True)
class _Staged:
    """One day of one table on its way in: the staging table, its final partition name and its indexes."""

    table: Table
    day: dt.date
    part: str
    stage: str
    writer: dict
    indexes: tuple[tuple[str, str, str], ...]


class PostgresWarehouse(Warehouse):
    dialect = "postgresql"
    default_schema = "public"

    def __init__(
        self,
        url,
        schema: str | None = None,
        read_chunk_rows: int = 100_000,
        staging_grace_seconds: float = DEFAULT_STAGING_GRACE_SECONDS,
        connect_timeout_seconds: int = DEFAULT_CONNECT_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(schema, read_chunk_rows, staging_grace_seconds)
        psycopg = _psycopg()
        kwargs = {
            "host": url.host,
            "port": url.port,
            "user": url.username,
            "password": url.password,
            "dbname": url.database,
        }
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        kwargs["connect_timeout"] = str(connect_timeout_seconds)  # a URL's own ?connect_timeout= wins
        kwargs.update({k: v for k, v in url.query.items() if isinstance(v, str)})
        user = f"{url.username}@" if url.username else ""
        self.dsn_description = f"postgresql://{user}{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
        try:
            self.conn = psycopg.connect(autocommit=True, **kwargs)
        except psycopg.Error as exc:
            raise WarehouseUnavailableError(
                f"warehouse unreachable: cannot connect to {self.dsn_description} ({one_line(exc)}); check "
                "CHURN_WAREHOUSE_URL / warehouse.url and that the server is up"
            ) from exc
        self._configure_session(self.conn)

    @staticmethod
    def _configure_session(conn) -> None:
        # UTC so TIMESTAMPTZ renders and compares the same as on DuckDB; no JIT because the feature
        # query is one large statement whose JIT compilation cost more than half its run time.
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("SET jit = off")

    def _run(self, sql: str, params: Params):
        psycopg = _psycopg()
        try:
            cur = self.conn.cursor()
            cur.execute(translate_params(sql, "psycopg"), dict(params) if params else None)
            return cur
        except psycopg.Error as exc:
            raise _query_error(exc, sql, self.dsn_description) from exc

    def execute(self, sql: str, params: Params = None) -> None:
        self._run(sql, params).close()

    def query_arrow(self, sql: str, params: Params = None) -> pa.Table:
        with self._run(sql, params) as cur:
            names = [d.name for d in cur.description]
            rows = cur.fetchall()
        return _rows_to_arrow(names, rows)

    def iter_arrow(self, sql: str, params: Params = None, chunk_rows: int | None = None) -> Iterator[pa.Table]:
        psycopg = _psycopg()
        chunk_rows = chunk_rows or self.read_chunk_rows
        # A named (server-side) cursor streams rows instead of buffering the whole result.
        # It needs a transaction, so it runs on a separate connection to leave ours free.
        conn = psycopg.connect(self.conn.info.dsn, password=self.conn.info.password or None)
        try:
            self._configure_session(conn)
            with conn.cursor(name=f"churn_stream_{next(_cursor_counter)}") as cur:
                cur.itersize = chunk_rows
                cur.execute(translate_params(sql, "psycopg"), dict(params) if params else None)
                names = None
                while True:
                    rows = cur.fetchmany(chunk_rows)
                    if names is None:
                        names = [d.name for d in cur.description]
                    if not rows:
                        break
                    yield _rows_to_arrow(names, rows)
        except psycopg.Error as exc:
            raise _query_error(exc, sql, self.dsn_description) from exc
        finally:
            conn.close()

    def _load_arrow(self, table: str, data: pa.Table, freeze: bool = False) -> None:
        """Binary COPY; ``freeze`` (the table was created in this transaction) writes the rows frozen."""
        psycopg = _psycopg()
        cols = ", ".join(quote_identifier(name) for name in data.column_names)
        options = "FORMAT binary, FREEZE" if freeze else "FORMAT binary"
        copy_sql = f"COPY {self.qualified(table)} ({cols}) FROM STDIN WITH ({options})"

        def encode(start: int) -> memoryview:
            return pgcopy.encode_rows(data.slice(start, COPY_BATCH_ROWS))

        starts = iter(range(0, data.num_rows, COPY_BATCH_ROWS))
        # Arrow encodes the next batch (without the GIL) while the server ingests this one.
        with ThreadPoolExecutor(max_workers=1) as encoder:
            pending = [encoder.submit(encode, start) for start in itertools.islice(starts, 2)]
            try:
                with self.conn.cursor() as cur, cur.copy(copy_sql) as copy:
                    copy.write(pgcopy.HEADER)
                    first = True
                    while pending:
                        chunk = pending.pop(0).result()
                        next_start = next(starts, None)
                        if next_start is not None:
                            pending.append(encoder.submit(encode, next_start))
                        copy.write(chunk)
                        if first:  # mid-COPY: the server holds part of the rows
                            fault_point("load")
                            first = False
                    copy.write(pgcopy.TRAILER)
            except psycopg.Error as exc:
                raise WarehouseError(f"Postgres: loading {table} failed: {exc}") from exc

    # -- partition replace ----------------------------------------------------------------------
    def _replace_rows(self, table: Table, arrow: pa.Table, column: str, value: Any) -> str:
        """Replace one day of a ``native_partitions`` table by swapping in a freshly loaded partition.

        The day's rows are COPYed (binary, ``FREEZE``) into a new standalone table that has no index yet
        and a ``CHECK (day = D)`` constraint; the primary key is then built in one bulk sort; finally
        one short transaction detaches and drops the day's old partition (if any), renames the new table
        and ATTACHes it (the CHECK lets ATTACH skip its validation scan). Readers see the old day or the
        new day, never a mix, and other days are not touched. A failure before the swap commits (bad
        rows, duplicate keys, a lost connection) leaves the old partition in place and the staging
        table is dropped. A process killed after its load committed leaves its staging table behind:
        the table's name carries its day and creation time and its comment the writer (host, pid, run),
        and every swap sweeps such orphans (``sweep_orphans``). Writers of the same day queue on an
        advisory lock, so a rerun replaces, never duplicates.
        Frozen rows are visible to snapshots older than the swap: a repeatable-read reader that
        started before it sees the new day rather than no day at all.

        Inside a caller's open transaction (the swap has to commit on its own) it falls back to the portable
        delete + insert: the day's partition is created if missing and rows are deleted and inserted within
        that transaction. A table that is not partitioned is refused (``churn init-warehouse`` creates it).
        """
        if not table.native_partitions or column != table.partition_column:
            return super()._replace_rows(table, arrow, column, value)
        day = as_date(value)
        if not isinstance(day, dt.date):
            raise WarehouseError(f"replace_partition({table.name}.{column}={value!r}): not a date")
        kind = self._relkind(table.name)
        if kind != "p":
            raise SchemaMismatchError(
                f"{self.qualified(table.name)} is {'missing' if kind is None else 'not partitioned by ' + column}: "
                "the contract declares one partition per day; run `churn init-warehouse` (on an empty schema, or "
                "with --reset)"
            )
        if self.conn.info.transaction_status != _psycopg().pq.TransactionStatus.IDLE:
            with self.transaction():
                if not self._partitions_for(table, day):
                    self.execute(
                        f"CREATE TABLE {self.qualified(partition_name(table.name, day))} "
                        f"PARTITION OF {self.qualified(table.name)} FOR VALUES IN ({_date_literal(day)})"
                    )
                super()._replace_rows(table, arrow, column, day)
            return "delete + insert inside the caller's transaction"
        return self._swap_partition(table, arrow, day)

    def _swap_partition(self, table: Table, arrow: pa.Table, day: dt.date) -> str:
        staged = self._plan_staging(table, day, _run_id(arrow))
        lock = _day_lock(self.schema, table.name, day)
        self.execute("SELECT pg_advisory_lock(hashtextextended(:key, 0))", lock)
        try:
            started = time.perf_counter()
            self.sweep_orphans(table, held_day=day)  # left by killed runs: this day's at once, others' once stale
            loaded, indexed = self._load_staged(staged, arrow)
            with self.transaction():
                self._attach_staged(staged)
            swapped = time.perf_counter()
        except BaseException:
            with contextlib.suppress(Exception):
                self.execute(f"DROP TABLE IF EXISTS {self.qualified(staged.stage)}")
            raise
        finally:
            with contextlib.suppress(Exception):  # a lost connection has released it already
                self.execute("SELECT pg_advisory_unlock(hashtextextended(:key, 0))", lock)
        return (
            f"partition swap: load {loaded - started:.2f} s, index {indexed - loaded:.2f} s, "
            f"swap {swapped - indexed:.3f} s"
        )

    def _replace_many(self, parts: list[tuple[Table, pa.Table]], column: str, value: Any) -> str:
        """Several tables' day in one swap transaction: each native table is staged and indexed first, then one
        transaction detaches the old partitions and attaches the new ones (and deletes + inserts the others).

        The writers' day locks are taken in table-name order (no two writers can deadlock); a failure before
        the swap commits drops every staging table and leaves every old day. Inside a caller's transaction it
        falls back to delete + insert in that transaction, as :meth:`_replace_rows` does.
        """
        native = [(t, a) for t, a in parts if t.native_partitions and column == t.partition_column]
        if not native or self.conn.info.transaction_status != _psycopg().pq.TransactionStatus.IDLE:
            with self.transaction():
                for table, arrow in parts:
                    self._replace_rows(table, arrow, column, value)
            return "delete + insert, one transaction"
        day = as_date(value)
        if not isinstance(day, dt.date):
            raise WarehouseError(f"replace_partitions({column}={value!r}): not a date")
        for table, _ in native:
            kind = self._relkind(table.name)
            if kind != "p":
                raise SchemaMismatchError(
                    f"{self.qualified(table.name)} is {'missing' if kind is None else 'not partitioned by ' + column}: "
                    "the contract declares one partition per day; run `churn init-warehouse` (on an empty schema, "
                    "or with --reset)"
                )
        others = [(t, a) for t, a in parts if not (t.native_partitions and column == t.partition_column)]
        native.sort(key=lambda item: item[0].name)
        locks = [_day_lock(self.schema, table.name, day) for table, _ in native]
        staged: list[_Staged] = []
        held = []
        try:
            for lock in locks:
                self.execute("SELECT pg_advisory_lock(hashtextextended(:key, 0))", lock)
                held.append(lock)
            started = time.perf_counter()
            for table, arrow in native:
                self.sweep_orphans(table, held_day=day)
                staged.append(self._plan_staging(table, day, _run_id(arrow)))
                self._load_staged(staged[-1], arrow)
            loaded = time.perf_counter()
            with self.transaction():
                for table, arrow in others:
                    super()._replace_rows(table, arrow, column, day)
                for plan in staged:
                    self._attach_staged(plan)
            swapped = time.perf_counter()
        except BaseException:
            for plan in staged:
                with contextlib.suppress(Exception):
                    self.execute(f"DROP TABLE IF EXISTS {self.qualified(plan.stage)}")
            raise
        finally:
            for lock in reversed(held):
                with contextlib.suppress(Exception):
                    self.execute("SELECT pg_advisory_unlock(hashtextextended(:key, 0))", lock)
        return f"{len(staged)} partition swaps in one transaction: load + index {loaded - started:.2f} s, swap {swapped - loaded:.3f} s"

    def _plan_staging(self, table: Table, day: dt.date, run_id: str | None) -> _Staged:
        """Names and DDL of the standalone table a new day is loaded into (nothing created yet)."""
        created, token = int(time.time()), uuid.uuid4().hex[:6]
        part, stage = partition_name(table.name, day), staging_name(table.name, day, created, token)
        writer = {
            "staging_for": table.name,
            "day": day.isoformat(),
            "created_at": dt.datetime.fromtimestamp(created, dt.UTC).isoformat(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "token": token,
            "run_id": run_id,
        }
        # Every index the parent has, built on the staging table (ATTACH adopts matching indexes instead of
        # building its own under the swap's lock): (name while staged, name once attached, DDL).
        staged_key, key = _derived_name(stage, "_pkey"), ", ".join(quote_identifier(c) for c in table.primary_key)
        indexes = [
            (
                staged_key,
                _derived_name(part, "_pkey"),
                f"ALTER TABLE {self.qualified(stage)} ADD CONSTRAINT "
                f"{quote_identifier(staged_key)} PRIMARY KEY ({key})",
            )
        ]
        for i, cols in enumerate(table.indexes):
            staged = _derived_name(stage, f"_ix{i}")
            indexes.append(
                (
                    staged,
                    _derived_name(part, f"_ix{i}"),
                    f"CREATE INDEX {quote_identifier(staged)} ON "
                    f"{self.qualified(stage)} ({', '.join(quote_identifier(c) for c in cols)})",
                )
            )
        return _Staged(table, day, part, stage, writer, tuple(indexes))

    def _load_staged(self, staged: _Staged, arrow: pa.Table) -> tuple[float, float]:
        """Create the staging table, COPY the rows in, then build its indexes; returns (loaded, indexed) times."""
        parent = self.qualified(staged.table.name)
        bound = _date_literal(staged.day)
        with self.transaction():  # created and filled in one transaction: COPY FREEZE, no WAL for hint bits later
            self.execute(
                f"CREATE TABLE {self.qualified(staged.stage)} (LIKE {parent} INCLUDING ALL EXCLUDING INDEXES, "
                f"CONSTRAINT {_CHECK} CHECK ({quote_identifier(staged.table.partition_column)} = {bound}))"
            )
            # COMMENT takes no bound parameters: the JSON is quoted as a SQL literal
            comment = json.dumps(staged.writer, sort_keys=True).replace("'", "''")
            self.execute(f"COMMENT ON TABLE {self.qualified(staged.stage)} IS '{comment}'")
            self._load_arrow(staged.stage, arrow, freeze=True)
        loaded = time.perf_counter()
        for _, _, ddl in staged.indexes:  # one bulk build (sort) each, after the load
            self.execute(ddl)
            fault_point("key_build")
        return loaded, time.perf_counter()

    def _attach_staged(self, staged: _Staged) -> None:
        """Inside the caller's transaction: drop the day's old partition, attach the staged one in its place."""
        parent, part = self.qualified(staged.table.name), staged.part
        for old in self._partitions_for(staged.table, staged.day):
            self.execute(f"ALTER TABLE {parent} DETACH PARTITION {self.qualified(old)}")
            self.execute(f"DROP TABLE {self.qualified(old)}")
        self.execute(f"ALTER TABLE {self.qualified(staged.stage)} RENAME TO {quote_identifier(part)}")
        for name, final, _ in staged.indexes:
            self.execute(f"ALTER INDEX {self.qualified(name)} RENAME TO {quote_identifier(final)}")
        fault_point("swap")  # the old day is detached and dropped, the new one not attached yet
        bound = _date_literal(staged.day)
        self.execute(f"ALTER TABLE {parent} ATTACH PARTITION {self.qualified(part)} FOR VALUES IN ({bound})")
        self.execute(f"ALTER TABLE {self.qualified(part)} DROP CONSTRAINT {_CHECK}")  # implied from now on
        self.execute(f"COMMENT ON TABLE {self.qualified(part)} IS NULL")  # no longer a staging table

    def sweep_orphans(self, table: Table | str, held_day: dt.date | None = None) -> list[str]:
        """Drop the staging tables of ``table`` that killed writers left behind; returns the names dropped.

        A staging table is an orphan when no writer holds its day's advisory lock: a live writer holds it
        from before it creates the table until after the swap, and the lock dies with the writer's session.
        ``held_day`` is the day whose lock the caller holds (its leftovers go at once); the other days'
        staging tables go once older than ``staging_grace_seconds`` (from the creation time in their name)
        and only if their day's lock is free, taken without waiting for the drop and released after it.
        """
        table = _table(table)
        if not table.native_partitions:
            return []
        rows = self.query_arrow(
            "SELECT c.relname, obj_description(c.oid, 'pg_class') AS comment FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :schema AND c.relkind = 'r' AND strpos(c.relname, '__load') > 0",
            {"schema": self.schema},
        ).to_pylist()
        now, dropped = time.time(), []
        for row in rows:
            found = _parse_staging(table.name, row["relname"])
            if found is None:
                continue
            day, created = found
            if day != held_day and created is not None and now - created < self.staging_grace_seconds:
                continue  # young: possibly a live writer on a clock ahead of ours; swept by a later run
            lock = _day_lock(self.schema, table.name, day)
            if day != held_day and not self.scalar("SELECT pg_try_advisory_lock(hashtextextended(:key, 0))", lock):
                continue  # a live writer is using it
            try:
                self.execute(f"DROP TABLE IF EXISTS {self.qualified(row['relname'])}")
                dropped.append(row["relname"])
                logger.warning(
                    "dropped staging table %s left by a killed writer (%s)",
                    self.qualified(row["relname"]),
                    row["comment"] or "written by an older version",
                )
            except WarehouseError as exc:  # never fail a write over an orphan: it is retried next time
                logger.warning("could not drop orphaned staging table %s: %s", row["relname"], exc)
            finally:
                if day != held_day:
                    self.execute("SELECT pg_advisory_unlock(hashtextextended(:key, 0))", lock)
        return dropped

    def _relkind(self, table: str) -> str | None:
        """``p`` partitioned, ``r`` plain table, None when missing."""
        return self.scalar(
            "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :schema AND c.relname = :table",
            {"schema": self.schema, "table": table},
        )

    def _partitions_for(self, table: Table, day: dt.date) -> list[str]:
        """Partitions of ``table`` holding exactly ``day`` (whatever their names), compared as Postgres prints them."""
        rows = self.query_arrow(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST(:parent AS regclass) "
            "AND pg_get_expr(c.relpartbound, c.oid) = format('FOR VALUES IN (%L)', CAST(:day AS date))",
            {"parent": self.qualified(table.name), "day": day},
        )
        return [validate_identifier(name) for name in rows.column(0).to_pylist()]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    def table_exists(self, table: str) -> bool:
        return bool(
            self.scalar(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = :schema AND table_name = :table",
                {"schema": self.schema, "table": table},
            )
        )

    def _enforce_primary_key(self, table: Table) -> bool:
        # Platform-written tables get a real key on Postgres: a bug that would duplicate scores fails loudly.
        return not table.raw

    def _partitioning_clause(self, table: Table) -> str:
        return f" PARTITION BY LIST ({quote_identifier(table.partition_column)})" if table.native_partitions else ""

    def _create_index(self, table: Table, columns: tuple[str, ...]) -> None:
        name = quote_identifier(f"ix_{table.name}_{'_'.join(columns)}"[:63])
        cols = ", ".join(quote_identifier(c) for c in columns)
        self.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {self.qualified(table.name)} ({cols})")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()

    def location(self) -> str:
        return f"{self.dsn_description} schema {self.schema}"

    def __repr__(self) -> str:
        return f"PostgresWarehouse({self.dsn_description!r}, schema={self.schema!r})"


def _query_error(exc: Exception, sql: str, where: str) -> WarehouseError:
    """A lost server is ``WarehouseUnavailableError`` (named, one line); any other failure keeps its SQL."""
    if isinstance(exc, _psycopg().OperationalError) and getattr(exc, "sqlstate", None) in (None, "57P01", "57P02"):
        return WarehouseUnavailableError(f"warehouse connection lost: {where} ({one_line(exc)}); rerun once it is back")
    return WarehouseError(f"Postgres: {exc}\nSQL: {sql[:500]}")


def _rows_to_arrow(names: list[str], rows: list[tuple]) -> pa.Table:
    """Row tuples to Arrow; NUMERIC (Decimal) columns become float64.

    A result column has one Postgres type, so its first non-null value says whether it is NUMERIC: only
    those columns pay a per-value conversion (checking every value cost ~30% of reading 1M staged rows).
    """
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    arrays = []
    for values in columns:
        first = next((v for v in values if v is not None), None)
        if type(first).__name__ == "Decimal":
            values = [None if v is None else float(v) for v in values]
        arrays.append(pa.array(values))
    return pa.Table.from_arrays(arrays, names=names)


def _derived_name(base: str, suffix: str) -> str:
    """``base + suffix`` as a valid identifier within Postgres' 63 characters (a long base is cut and hashed)."""
    name = base + suffix
    if len(name) > MAX_IDENTIFIER:
        digest = hashlib.sha1(base.encode()).hexdigest()[:8]
        name = f"{base[: MAX_IDENTIFIER - len(suffix) - 9]}_{digest}{suffix}"
    return validate_identifier(name, "derived table name")


def partition_name(table: str, day: dt.date) -> str:
    """The attached partition of ``table`` for ``day``: ``churn_scores__p20260101``."""
    return _derived_name(validate_identifier(table), f"__p{day:%Y%m%d}")


def staging_name(table: str, day: dt.date, created: int, token: str) -> str:
    """The table a new day is loaded into before the swap: ``churn_scores__load20260101_692e1a2b_3f9c0d``.

    Day, creation time (unix seconds, hex) and the writer's token are in the name, so the sweep can tell
    an orphan's age from the catalog alone and two writers' tables never share a name.
    """
    return _derived_name(validate_identifier(table), f"__load{day:%Y%m%d}_{created:x}_{token}")


def _parse_staging(table: str, relname: str) -> tuple[dt.date, int | None] | None:
    """(day, created) when ``relname`` is a staging table of ``table`` (created None: an older version's)."""
    match = _STAGING_SUFFIX_RE.search(relname)
    if match is None or _derived_name(table, match.group(0)) != relname:
        return None
    try:
        day = dt.datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        return None
    return day, (int(match.group(2), 16) if match.group(2) else None)


def _day_lock(schema: str, table: str, day: dt.date) -> dict[str, str]:
    """The advisory-lock key every writer of one day of one table holds (bound parameter)."""
    return {"key": f"{schema}.{table}.{day.isoformat()}"}


def _run_id(arrow: pa.Table) -> str | None:
    """The writing run's id, when the rows carry one (churn_scores.run_id), for the staging table's comment."""
    if "run_id" not in arrow.column_names or not arrow.num_rows:
        return None
    return str(arrow.column("run_id")[0].as_py())


def _date_literal(day: dt.date) -> str:
    """A SQL date literal for DDL (which takes no bound parameters); rendered from a date object only."""
    if not isinstance(day, dt.date):
        raise WarehouseError(f"expected a date, got {day!r}")
    return f"DATE '{day.isoformat()}'"
