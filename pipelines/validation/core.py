"""Run the raw-table suites as one Great Expectations checkpoint against the configured warehouse.

Why an ephemeral GX context: suites are code (``expectations/``) and results go to Data Docs and to
the returned report, so there is no GX project state to keep, nothing machine-specific to commit,
and two runs never fight over a store. Great Expectations is imported lazily (it takes seconds).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import logging
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.contract import RAW_TABLES, ExitCode
from pipelines.dates import as_date
from pipelines.validation.report import (
    ValidationFailed,
    ValidationFailure,
    ValidationReport,
    describe_result,
    order_failures,
)
from pipelines.validation.rules import SuiteContext

if TYPE_CHECKING:
    from pipelines.config import Config

logger = logging.getLogger(__name__)

SUITES_PACKAGE = "expectations"  # the top-level expectations/ folder, installed with the package (pyproject.toml)
EXPECTATIONS_DIR = Path(importlib.util.find_spec(SUITES_PACKAGE).origin).parent
RAW_TABLE_NAMES = tuple(t.name for t in RAW_TABLES)
DATA_DOCS_SITE = "churn_data_docs"
DATASOURCE = "warehouse"


class ValidationSetupError(RuntimeError):
    """Validation could not run at all (bad table name, unreachable warehouse, missing driver)."""

    exit_code = ExitCode.CONFIG


def load_suite_builder(table: str) -> Callable[[SuiteContext], Any]:
    """``build_suite`` of ``expectations/<table>.py``, found through the installed package (no checkout needed)."""
    if not (EXPECTATIONS_DIR / f"{table}.py").exists():
        raise ValidationSetupError(f"no expectation suite for table {table!r} in {EXPECTATIONS_DIR}")
    return importlib.import_module(f"{SUITES_PACKAGE}.{table}").build_suite


def suite_context(config: Config, as_of: dt.date, schema: str, dialect: str) -> SuiteContext:
    v = config.validation
    return SuiteContext(
        as_of=as_of,
        schema=schema,
        dialect=dialect,
        freshness_days=v.freshness_days,
        require_non_empty=frozenset(v.require_non_empty),
        require_recent=frozenset(v.require_recent),
    )


def _connection(config: Config) -> tuple[str, str, str]:
    """(SQLAlchemy URL for GX, schema, dialect) for the configured warehouse."""
    from sqlalchemy.engine import make_url

    url = make_url(config.warehouse_url)
    backend = url.get_backend_name()
    if backend == "duckdb":
        if not url.database or url.database == ":memory:":
            raise ValidationSetupError("cannot validate an in-memory DuckDB warehouse from a second connection")
        try:
            from pipelines.validation.duckdb_dialect import DRIVER, register
        except ImportError as exc:
            raise ValidationSetupError(
                f"validating a DuckDB warehouse needs the duckdb-engine package (SQLAlchemy dialect): {exc}"
            ) from exc
        register()
        gx_url = url.set(drivername=f"duckdb+{DRIVER}").render_as_string(hide_password=False)
        return gx_url, config.warehouse_schema or "main", "duckdb"
    if backend in ("postgresql", "postgres"):
        gx_url = url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        return gx_url, config.warehouse_schema or "public", "postgresql"
    if backend == "spark":
        return _spark_as_duckdb(config, url)
    raise ValidationSetupError(f"cannot validate warehouse dialect {backend!r}; use duckdb, postgresql or spark")


def _spark_as_duckdb(config: Config, url) -> tuple[str, str, str]:
    """A Spark warehouse's raw tables as views over their Parquet files in a scratch DuckDB file.

    Why DuckDB: GX reaches tables through SQLAlchemy, which Spark has no dialect for; DuckDB reads the very
    files Spark reads (same columns, same types: a renamed or retyped column shows as it is in the files), so
    the suites check the data the feature SQL will see. An empty table (no file yet) is its contract DDL.
    """
    import tempfile

    import duckdb

    from pipelines.contract import SQL_TYPES
    from pipelines.validation.duckdb_dialect import DRIVER, register

    root = Path(url.database) / (config.warehouse_schema or "main")
    scratch = Path(tempfile.mkdtemp(prefix="churn-gx-spark-")) / "views.duckdb"
    con = duckdb.connect(str(scratch))
    try:
        for table in RAW_TABLES:
            folder = root / table.name
            if not folder.is_dir():
                continue  # reported as a missing table by the run
            name = f'"{table.name}"'
            if any(p.suffix == ".parquet" and not p.name.startswith((".", "_")) for p in folder.iterdir()):
                files = str(folder / "*.parquet").replace("'", "''")
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{files}', union_by_name = true)")
            else:
                columns = ", ".join(f'"{c.name}" {SQL_TYPES[c.type]}' for c in table.columns)
                con.execute(f"CREATE TABLE {name} ({columns})")
    finally:
        con.close()
    register()
    logger.info("validating the Spark warehouse's Parquet files under %s through DuckDB views (%s)", root, scratch)
    return f"duckdb+{DRIVER}:///{scratch}", "main", "duckdb"


@contextlib.contextmanager
def _disposing_engines(url: str) -> Iterator[None]:
    """Dispose every SQLAlchemy engine GX opens on ``url`` (it makes more than one) when done.

    Why: a pooled DuckDB connection left open keeps the file locked against other processes
    (and against differently configured connections in this one) until garbage collection.
    """
    import sqlalchemy as sa

    engines: weakref.WeakSet = weakref.WeakSet()

    def track(conn) -> None:
        if conn.engine.url.render_as_string(hide_password=False) == url:
            engines.add(conn.engine)

    sa.event.listen(sa.engine.Engine, "engine_connect", track)
    try:
        yield
    finally:
        sa.event.remove(sa.engine.Engine, "engine_connect", track)
        for engine in list(engines):
            engine.dispose()


def _existing_tables(engine, schema: str) -> set[str]:
    import sqlalchemy as sa

    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = :schema"), {"schema": schema}
        ).fetchall()
    return {r[0] for r in rows}


def _add_example_rows(engine, qualified_table: str, result: Any, limit: int) -> None:
    """Attach a few offending rows to a failed ``UnexpectedRowsExpectation`` result.

    GX returns the rows only with result_format COMPLETE, which would also return every bad value
    of every column expectation; running the (small, LIMITed) query again is cheaper.
    """
    import sqlalchemy as sa

    res = result.result if isinstance(result.result, dict) else {}
    if res.get("details", {}).get("unexpected_rows"):
        return
    query = result.expectation_config.kwargs["unexpected_rows_query"].replace("{batch}", qualified_table)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT * FROM ({query}) AS unexpected_rows LIMIT {int(limit)}")).mappings()
            examples = [dict(row) for row in rows]
    except Exception as exc:  # examples are a courtesy; the failure itself is already known
        logger.debug("could not fetch example rows: %s", exc)
        return
    res.setdefault("details", {})["unexpected_rows"] = examples
    result.result = res


def _context(data_docs_dir: Path):
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    project_config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites={
            DATA_DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(data_docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
    )
    return gx.get_context(project_config=project_config, mode="ephemeral")


def validate_warehouse(config: Config, as_of: dt.date | str, tables: Sequence[str] | None = None) -> ValidationReport:
    """Validate raw tables with their GX suites in one checkpoint; raise ``ValidationFailed`` on any failure.

    ``as_of`` is the run's date: timestamps after the end of that day (UTC) are future data, and the
    freshness window ends there. Data Docs are rebuilt under ``validation.data_docs_dir`` either way.
    """
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    from pipelines.validation.gx_actions import UpdateDataDocsOnceAction
    from pipelines.validation.html import finish_data_docs

    started = time.monotonic()
    # GX warns once per type check that DuckDB has no dialect types module; top-level SQLAlchemy
    # types are exactly what the DuckDB dialect reflects, so the warning is noise.
    logging.getLogger("great_expectations.expectations.type_comparison").setLevel(logging.ERROR)
    as_of = as_date(as_of)
    tables = list(dict.fromkeys(tables or RAW_TABLE_NAMES))
    unknown = [t for t in tables if t not in RAW_TABLE_NAMES]
    if unknown:
        raise ValidationSetupError(f"unknown table(s) {', '.join(unknown)}; raw tables: {', '.join(RAW_TABLE_NAMES)}")
    url, schema, dialect = _connection(config)
    ctx = suite_context(config, as_of, schema, dialect)
    data_docs_dir = config.resolve_path(config.validation.data_docs_dir)
    data_docs_dir.mkdir(parents=True, exist_ok=True)

    context = _context(data_docs_dir)
    with _disposing_engines(url):
        try:
            add = context.data_sources.add_postgres if dialect == "postgresql" else context.data_sources.add_sql
            datasource = add(name=DATASOURCE, connection_string=url)
        except Exception as exc:  # GX wraps driver errors in TestConnectionError
            raise ValidationSetupError(f"cannot connect to the warehouse for validation: {exc}") from exc
        existing = _existing_tables(datasource.get_engine(), schema)
        failures = [
            ValidationFailure(
                t,
                None,
                "table_exists",
                f"table_exists failed: {schema}.{t} does not exist (run `churn init-warehouse`)",
            )
            for t in tables
            if t not in existing
        ]
        definitions = []
        for table in tables:
            if table not in existing:
                continue
            suite = context.suites.add(load_suite_builder(table)(ctx))
            asset = datasource.add_table_asset(name=table, table_name=table, schema_name=schema)
            batch = asset.add_batch_definition_whole_table(f"{table}_all_rows")
            definitions.append(
                context.validation_definitions.add(
                    gx.ValidationDefinition(name=f"{table}_{as_of.isoformat()}", data=batch, suite=suite)
                )
            )
            logger.info("validating %s.%s: %d expectations", schema, table, len(suite.expectations))
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"raw_tables_{as_of.isoformat()}",
                validation_definitions=definitions,
                actions=[UpdateDataDocsOnceAction(name="update_data_docs", site_names=[DATA_DOCS_SITE])],
                result_format={
                    "result_format": "SUMMARY",
                    "partial_unexpected_count": config.validation.partial_unexpected_count,
                },
            )
        )
        run_name = f"as-of-{as_of.isoformat()}"  # the page folder: not GX's "__none__"
        result = checkpoint.run(run_id=RunIdentifier(run_name=run_name)) if definitions else None
        per_table: dict[str, dict[str, int]] = {}
        for run_result in result.run_results.values() if result else []:
            table = run_result.suite_name
            failed = [r for r in run_result.results if not r.success]
            for r in failed:
                if r.expectation_config.type == "unexpected_rows_expectation":
                    _add_example_rows(
                        datasource.get_engine(), ctx.table(table), r, config.validation.partial_unexpected_count
                    )
            table_failures = order_failures([describe_result(table, r) for r in failed])
            failures.extend(table_failures)
            stats = {"evaluated": len(run_result.results), "failed": len(failed)}
            per_table[table] = stats
            log = logger.warning if table_failures else logger.info
            log("%s: %d/%d expectations met", table, stats["evaluated"] - stats["failed"], stats["evaluated"])

    finish_data_docs(data_docs_dir, as_of, per_table, run_name)  # offline index and pages, as-of and DAG run on each
    evaluated = sum(s["evaluated"] for s in per_table.values())
    statistics = {
        "as_of": as_of.isoformat(),
        "tables": per_table,
        "evaluated_expectations": evaluated,
        "successful_expectations": evaluated - sum(s["failed"] for s in per_table.values()),
        "seconds": round(time.monotonic() - started, 2),
    }
    report = ValidationReport(
        success=not failures, failures=failures, data_docs_path=str(data_docs_dir / "index.html"), statistics=statistics
    )
    if failures:
        raise ValidationFailed(report)
    logger.info("%s; Data Docs: %s", report.summary(), report.data_docs_path)
    return report
