"""PostgreSQL backend: bulk loads stream Arrow-written CSV through COPY."""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.csv as pacsv

from pipelines.data.contract import Table
from pipelines.warehouse.base import Params, Warehouse, WarehouseError, quote_identifier, translate_params

logger = logging.getLogger(__name__)
_cursor_counter = itertools.count()
COPY_BATCH_ROWS = 50_000


def _psycopg():
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a dependency
        raise WarehouseError("the postgres backend needs psycopg 3 (pip install 'psycopg[binary]')") from exc
    return psycopg


class PostgresWarehouse(Warehouse):
    dialect = "postgresql"
    default_schema = "public"

    def __init__(self, url, schema: str | None = None, read_chunk_rows: int = 100_000) -> None:
        super().__init__(schema, read_chunk_rows)
        psycopg = _psycopg()
        kwargs = {
            "host": url.host, "port": url.port, "user": url.username, "password": url.password,
            "dbname": url.database,
        }
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        kwargs.update({k: v for k, v in url.query.items() if isinstance(v, str)})
        self.dsn_description = f"postgresql://{url.username or ''}@{url.host or 'localhost'}:{url.port or 5432}/{url.database}"
        try:
            self.conn = psycopg.connect(autocommit=True, **kwargs)
        except psycopg.Error as exc:
            raise WarehouseError(f"cannot connect to {self.dsn_description}: {exc}") from exc
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
            raise WarehouseError(f"Postgres: {exc}\nSQL: {sql[:500]}") from exc

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
            raise WarehouseError(f"Postgres: {exc}\nSQL: {sql[:500]}") from exc
        finally:
            conn.close()

    def _load_arrow(self, table: str, data: pa.Table) -> None:
        psycopg = _psycopg()
        cols = ", ".join(quote_identifier(name) for name in data.column_names)
        copy_sql = f"COPY {self.qualified(table)} ({cols}) FROM STDIN WITH (FORMAT csv, HEADER false, NULL '')"
        options = pacsv.WriteOptions(include_header=False, quoting_style="needed")

        def encode(start: int) -> bytes:
            buffer = io.BytesIO()
            pacsv.write_csv(data.slice(start, COPY_BATCH_ROWS), buffer, write_options=options)
            return buffer.getvalue()

        starts = iter(range(0, data.num_rows, COPY_BATCH_ROWS))
        # Arrow encodes the next batch (without the GIL) while the server ingests this one.
        with ThreadPoolExecutor(max_workers=1) as encoder:
            pending = [encoder.submit(encode, start) for start in itertools.islice(starts, 2)]
            try:
                with self.conn.cursor() as cur, cur.copy(copy_sql) as copy:
                    while pending:
                        chunk = pending.pop(0).result()
                        next_start = next(starts, None)
                        if next_start is not None:
                            pending.append(encoder.submit(encode, next_start))
                        copy.write(chunk)
            except psycopg.Error as exc:
                raise WarehouseError(f"Postgres: loading {table} failed: {exc}") from exc

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

    def _create_index(self, table: Table, columns: tuple[str, ...]) -> None:
        name = quote_identifier(f"ix_{table.name}_{'_'.join(columns)}"[:63])
        cols = ", ".join(quote_identifier(c) for c in columns)
        self.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {self.qualified(table.name)} ({cols})")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()

    def __repr__(self) -> str:
        return f"PostgresWarehouse({self.dsn_description!r}, schema={self.schema!r})"


def _rows_to_arrow(names: list[str], rows: list[tuple]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    arrays = []
    for values in columns:
        values = [float(v) if type(v).__name__ == "Decimal" else v for v in values]
        arrays.append(pa.array(values))
    return pa.Table.from_arrays(arrays, names=names)
