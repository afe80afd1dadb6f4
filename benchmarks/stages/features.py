"""Stage features: feature + text-view build inside the warehouse (DuckDB; Postgres where it fits)."""

from __future__ import annotations

import logging
import time
import uuid

from benchmarks.common import Context, StageResult, repeat_runs, require
from benchmarks.stages.data import RAW_COUNT_TABLES, ensure_data, open_duckdb, score_date

logger = logging.getLogger("benchmarks.features")

POSTGRES_MAX_CUSTOMERS = 10_000  # copying ~2M rows + building took ~90 s at 10k on 2 busy cores; 10x is too long


def _build(wh, config, day) -> tuple[float, int, int]:
    build_features = require("pipelines.features", "build_features")
    start = time.perf_counter()
    frame = build_features(wh, config, [day])
    seconds = time.perf_counter() - start
    text_chars = int(frame["text_view"].str.len().sum()) if "text_view" in frame else 0
    return seconds, len(frame), text_chars


def _stream(wh, config, day) -> tuple[float, int]:
    iter_scoring_features = require("pipelines.features", "iter_scoring_features")
    start = time.perf_counter()
    rows = 0
    for chunk in iter_scoring_features(wh, config, day, config.scoring.chunk_rows):
        rows += len(chunk)
    return time.perf_counter() - start, rows


def run(ctx: Context) -> StageResult:
    require("pipelines.features", "build_features")
    counts = ensure_data(ctx)
    config = ctx.config()
    day = score_date(config)
    result = StageResult("features", repeat=ctx.repeats(3 if ctx.small else 1))
    orders_events = counts.get("orders", 0) + counts.get("events", 0)
    result.info.update(
        {
            "backend": "duckdb",
            "customers": ctx.customers,
            "score_date": day.isoformat(),
            "cutoffs": 1,
            "row_counts": counts,
            "orders_plus_events": orders_events,
        }
    )

    with open_duckdb(ctx) as wh:
        rows_seen = {}

        def once(_: int) -> dict[str, float]:
            seconds, rows, chars = _build(wh, config, day)
            rows_seen.update(rows=rows, chars=chars)
            return {"seconds": seconds, "rows_per_s": rows / seconds if seconds else 0.0}

        runs = repeat_runs(result.repeat, once, result)
        result.add(
            "duckdb_build_seconds",
            runs["seconds"],
            "s",
            f"build_features, 1 cutoff, {ctx.customers:,} customers, {orders_events:,} orders+events",
        )
        result.add(
            "duckdb_build_rows_per_s", runs["rows_per_s"], "rows/s", "feature rows (population customers) per second"
        )
        result.info.update(
            {
                "feature_rows": rows_seen.get("rows"),
                "mean_text_view_chars": round(rows_seen["chars"] / rows_seen["rows"], 1)
                if rows_seen.get("rows")
                else None,
            }
        )
        try:
            stream_runs = [(_stream(wh, config, day)) for _ in range(result.repeat)]
            result.add(
                "duckdb_stream_seconds",
                [s for s, _ in stream_runs],
                "s",
                f"iter_scoring_features drained, chunk_rows={config.scoring.chunk_rows}",
            )
            result.info["stream_rows"] = stream_runs[0][1]
        except Exception as exc:  # streaming is optional to this stage
            result.notes.append(f"iter_scoring_features not measured: {exc}")

    if not ctx.postgres_url:
        result.notes.append("Postgres feature build not measured (no --postgres-url)")
    elif ctx.customers > POSTGRES_MAX_CUSTOMERS:
        result.notes.append(f"Postgres feature build skipped above {POSTGRES_MAX_CUSTOMERS:,} customers (time)")
    else:
        _postgres(ctx, config, day, result)
    return result


def _postgres(ctx: Context, config, day, result: StageResult) -> None:
    from pipelines.warehouse import connect

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        pg = connect(ctx.postgres_url, schema)
    except Exception as exc:
        result.notes.append(f"Postgres not reachable: {exc}")
        return
    try:
        pg.init_schema()
        start = time.perf_counter()
        copied = 0
        with open_duckdb(ctx) as duck:
            for table in (*RAW_COUNT_TABLES, "products"):
                for chunk in duck.iter_arrow(f"SELECT * FROM {duck.qualified(table)}", chunk_rows=500_000):
                    copied += pg.bulk_load(table, chunk)
        pg.execute("ANALYZE")  # fresh statistics, as a nightly load would leave them
        result.info["postgres_copy"] = {"rows": copied, "seconds": round(time.perf_counter() - start, 2)}
        runs = [_build(pg, config, day)[0] for _ in range(result.repeat)]
        result.add(
            "postgres_build_seconds", runs, "s", f"build_features on Postgres, 1 cutoff, {ctx.customers:,} customers"
        )
    except Exception as exc:
        result.notes.append(f"Postgres feature build failed: {type(exc).__name__}: {str(exc)[:300]}")
    finally:
        try:
            pg.drop_schema()
        finally:
            pg.close()
