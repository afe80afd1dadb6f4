"""Stage gen: sample-data generation speed (customers/s) into a fresh DuckDB warehouse."""

from __future__ import annotations

from benchmarks.common import Context, StageResult, repeat_runs
from benchmarks.stages.data import generate


def run(ctx: Context) -> StageResult:
    result = StageResult("gen", repeat=ctx.repeats(3 if ctx.small else 1))
    counts_seen: dict[str, int] = {}

    def once(_: int) -> dict[str, float]:
        counts, seconds = generate(ctx)
        counts_seen.update(counts)
        return {"seconds": seconds, "customers_per_s": ctx.customers / seconds}

    runs = repeat_runs(result.repeat, once, result)
    result.add("customers_per_s", runs["customers_per_s"], "customers/s", "generate_sample_data into DuckDB")
    result.add("seconds", runs["seconds"], "s", f"generate {ctx.customers:,} customers")
    orders, events = counts_seen.get("orders", 0), counts_seen.get("events", 0)
    result.info.update(
        {
            "backend": "duckdb",
            "customers": ctx.customers,
            "row_counts": counts_seen,
            "orders_plus_events": orders + events,
        }
    )
    return result
