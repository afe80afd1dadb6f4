"""The sample warehouse the stages share: generated once per scale, reused while it matches."""

from __future__ import annotations

import datetime as dt
import logging
import time

from benchmarks.common import Context, require

logger = logging.getLogger("benchmarks.data")

RAW_COUNT_TABLES = ("customers", "orders", "order_items", "events", "reviews")


def score_date(config) -> dt.date:
    """Scoring happens the day after the generated history ends."""
    return config.sample_data.end + dt.timedelta(days=1)


def labelled_cutoff(config) -> dt.date:
    """Latest cutoff whose churn horizon is fully observed (labels exist)."""
    return config.sample_data.end - dt.timedelta(days=config.churn.horizon_days)


def open_duckdb(ctx: Context):
    from pipelines.warehouse import connect

    return connect(f"duckdb:///{ctx.duckdb_path}")


def table_counts(wh) -> dict[str, int]:
    return {name: wh.row_count(name) for name in RAW_COUNT_TABLES if wh.table_exists(name)}


def generate(ctx: Context, wh=None) -> tuple[dict[str, int], float]:
    """Generate sample data for ctx.customers into a fresh DuckDB file; returns (counts, seconds)."""
    generate_sample_data = require("pipelines.data.generator", "generate_sample_data")
    config = ctx.config()
    own = wh is None
    if own:
        for suffix in ("", ".wal"):
            path = ctx.duckdb_path.with_name(ctx.duckdb_path.name + suffix)
            path.unlink(missing_ok=True)
        wh = open_duckdb(ctx)
    try:
        wh.init_schema()
        start = time.perf_counter()
        returned = generate_sample_data(
            wh,
            customers=ctx.customers,
            seed=config.sample_data.seed,
            start=config.sample_data.start,
            end=config.sample_data.end,
        )
        seconds = time.perf_counter() - start
        counts = table_counts(wh)
        if isinstance(returned, dict):
            counts.update({k: int(v) for k, v in returned.items() if isinstance(v, int | float)})
    finally:
        if own:
            wh.close()
    ctx.shared["generated"] = counts
    return counts, seconds


def ensure_data(ctx: Context) -> dict[str, int]:
    """Row counts of the scale's warehouse, generating it first unless an earlier stage or run did."""
    if "generated" in ctx.shared:
        return ctx.shared["generated"]
    if ctx.duckdb_path.exists():
        try:
            with open_duckdb(ctx) as wh:
                counts = table_counts(wh)
            if counts.get("customers") == ctx.customers and counts.get("orders"):
                logger.info("reusing %s (%s)", ctx.duckdb_path, counts)
                ctx.shared["generated"] = counts
                return counts
        except Exception as exc:  # a half-written file from an interrupted run
            logger.info("not reusing %s: %s", ctx.duckdb_path, exc)
    require("pipelines.data.generator", "generate_sample_data")
    logger.info("generating sample data for %d customers into %s", ctx.customers, ctx.duckdb_path)
    counts, _ = generate(ctx)
    return counts
