"""Publish step of sharded scoring at scale: seconds to publish N staged customers, on DuckDB and PostgreSQL.

    python -m benchmarks.publish_scale --rows 1m [--shards 4] [--engines duckdb,postgres]

The staging rows are **synthetic** (random probabilities, tiers from the default bounds, 3 reasons per
medium/high customer, a segment per customer), written by the shards' own staging code
(``shards._stage``, one transaction per shard); no feature SQL or model runs, because the publish step
reads only staging. Timed: :func:`pipelines.scoring.shards.publish_shards` (manifest check, staging read,
validation, day-wide percentile ranks, the three partition replaces, staging cleared), first into an
empty day, then again replacing that day (the rerun case). Prints one JSON line per engine; a throwaway
DuckDB file / Postgres schema is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import signal
import sys
import tempfile
import time
import uuid

import numpy as np

from benchmarks.common import parse_scale

logger = logging.getLogger("benchmarks.publish_scale")
SCORE_DATE = dt.date(2025, 3, 1)
REASONS_PER_CUSTOMER = 3


def synthetic_shard(lo: int, hi: int, run_id: str, seed: int):
    """Staging tables for customer ids lo..hi (inclusive): scores, reasons for medium/high, segments."""
    import pyarrow as pa

    from pipelines.contract import CHURN_SCORE_REASONS, CHURN_SCORES, CUSTOMER_SEGMENTS

    rng = np.random.default_rng(seed)
    ids = np.arange(lo, hi + 1, dtype=np.int64)
    n = len(ids)
    p = rng.beta(2.0, 5.0, n)
    tiers = np.where(p >= 0.6, "high", np.where(p >= 0.3, "medium", "low"))
    now = dt.datetime.now(dt.UTC)
    scores = pa.table(
        {
            "customer_id": ids,
            "score_date": pa.array([SCORE_DATE] * n, pa.date32()),
            "churn_probability": p,
            "risk_tier": tiers,
            "model_name": ["churn-risk"] * n,
            "model_version": ["1"] * n,
            "run_id": [run_id] * n,
            "scored_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
            "expected_revenue": rng.gamma(2.0, 40.0, n),
            "value_at_risk": rng.gamma(2.0, 10.0, n),
            "percentile_rank": np.zeros(n),
            "probability_change": rng.normal(0.0, 0.05, n),
            "tier_rank": np.where(tiers == "high", 2, np.where(tiers == "medium", 1, 0)).astype(np.int32),
        }
    )
    explained = ids[tiers != "low"]
    m = len(explained) * REASONS_PER_CUSTOMER
    features = np.array(["days_since_last_order", "orders_90d", "support_contacts_90d", "avg_rating_365d"])
    feature = features[rng.integers(0, len(features), m)]
    reasons = pa.table(
        {
            "score_date": pa.array([SCORE_DATE] * m, pa.date32()),
            "customer_id": np.repeat(explained, REASONS_PER_CUSTOMER),
            "rank": np.tile(np.arange(1, REASONS_PER_CUSTOMER + 1, dtype=np.int32), len(explained)),
            "reason_code": np.char.add("high_", feature),
            "feature": feature,
            "value": rng.gamma(2.0, 5.0, m),
            "contribution": rng.gamma(2.0, 0.1, m),
            "text": np.char.add("feature moved: ", feature),
        }
    )
    segment = rng.integers(0, 6, n).astype(np.int32)
    segments = pa.table(
        {
            "score_date": pa.array([SCORE_DATE] * n, pa.date32()),
            "customer_id": ids,
            "segment_id": segment,
            "segment_name": np.char.add("segment ", segment.astype(str)),
        }
    )
    return {CHURN_SCORES.name: scores, CHURN_SCORE_REASONS.name: reasons, CUSTOMER_SEGMENTS.name: segments}


@contextlib.contextmanager
def _phase_timer():
    """Seconds spent in the publish's staging reads, partition replaces and staging deletes (benchmark-only wrap)."""
    from pipelines.warehouse.duckdb_backend import DuckDBWarehouse
    from pipelines.warehouse.postgres_backend import PostgresWarehouse

    phases = {"read_staging": 0.0, "replace_partitions": 0.0, "delete_staging": 0.0}
    originals = {}

    def timed(cls, name, phase, when=lambda *a, **k: True):
        original = cls.__dict__.get(name)
        originals[(cls, name)] = original
        inner = getattr(cls, name)

        def wrapper(self, *args, **kwargs):
            started = time.perf_counter()
            try:
                return inner(self, *args, **kwargs)
            finally:
                if when(*args, **kwargs):
                    phases[phase] += time.perf_counter() - started

        setattr(cls, name, wrapper)

    for cls in (DuckDBWarehouse, PostgresWarehouse):
        timed(
            cls,
            "query_arrow",
            "read_staging",
            lambda sql, *a, **k: "_staging" in sql and sql.lstrip().startswith("SELECT"),
        )
        timed(cls, "replace_partitions", "replace_partitions")
        timed(
            cls,
            "execute",
            "delete_staging",
            lambda sql, *a, **k: sql.lstrip().startswith("DELETE") and "_staging" in sql,
        )
    try:
        yield phases
    finally:
        for (cls, name), original in originals.items():
            if original is None:
                delattr(cls, name)
            else:
                setattr(cls, name, original)


def _stage_all(config, plan: list[dict], run_id: str) -> tuple[float, dict[str, int]]:
    from pipelines.scoring.shards import _stage
    from pipelines.warehouse import open_warehouse

    started, counts = time.perf_counter(), {}
    with open_warehouse(config, config.scoring.duckdb_memory_limit) as wh:
        from pipelines.scoring.shards import OUTPUTS, STAGING_TABLES

        wh.init_schema((*OUTPUTS, *STAGING_TABLES))
        for s in plan:
            tables = synthetic_shard(s["id_lo"], s["id_hi"], run_id, seed=s["shard"])
            for name, table in tables.items():
                counts[name] = counts.get(name, 0) + table.num_rows
            _stage(wh, run_id, SCORE_DATE, s["shard"], (s["id_lo"], s["id_hi"]), tables)
    return time.perf_counter() - started, counts


def measure(config, rows: int, shards: int) -> dict:
    """Stage ``rows`` synthetic customers in ``shards`` shards, publish; again (replacing the day)."""
    from pipelines.scoring.shards import publish_shards

    per = -(-rows // shards)
    plan = [
        {
            "shard": i,
            "id_lo": 1 + i * per,
            "id_hi": min(rows, (i + 1) * per),
            "customers": min(rows, (i + 1) * per) - i * per,
        }
        for i in range(shards)
    ]
    out = {"engine": config.warehouse_url.split(":", 1)[0], "rows": rows, "shards": shards}
    for attempt in ("empty_day", "replace_day"):
        run_id = f"bench-publish-{attempt}-{uuid.uuid4().hex[:6]}"
        stage_seconds, counts = _stage_all(config, plan, run_id)
        load_before = round(os.getloadavg()[0], 2)
        started = time.perf_counter()
        with _phase_timer() as phases:
            published = publish_shards(config, SCORE_DATE, run_id, plan)
        seconds = time.perf_counter() - started
        assert published["rows"] == rows, published
        out[attempt] = {
            "publish_seconds": round(seconds, 2),
            "rows_per_second": round(rows / seconds),
            "staged_rows": counts,
            "stage_seconds": round(stage_seconds, 2),
            "phases_seconds": {k: round(v, 2) for k, v in phases.items()},
            "load1": load_before,
        }
        print(json.dumps({**out, "attempt": attempt}), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=parse_scale, default=parse_scale("1m"), help="customers to publish (200k, 1m)")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--engines", default="duckdb,postgres")
    parser.add_argument(
        "--url", default=os.environ.get("CHURN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout` still removes the throwaway schema

    from benchmarks.machine import _cpu_flags
    from pipelines.config import Config
    from pipelines.warehouse import open_warehouse

    print(json.dumps({"cpus": os.cpu_count(), "cpu_flags": _cpu_flags(), "load_avg": os.getloadavg()}), flush=True)
    tmp = tempfile.mkdtemp(prefix="publish-bench-")
    for engine in args.engines.split(","):
        if engine == "duckdb":
            warehouse = {"url": f"duckdb:///{tmp}/warehouse.duckdb"}
        else:
            warehouse = {"url": args.url, "schema_name": f"bench_publish_{uuid.uuid4().hex[:8]}"}
        config = Config().with_overrides({"warehouse": warehouse})
        try:
            measure(config, args.rows, args.shards)
        finally:
            with open_warehouse(config) as wh:
                wh.drop_schema()
    print(json.dumps({"load_avg_end": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
