"""Sharded scoring on PostgreSQL: customers/s with 1 and 2 shards scored in parallel processes, and the publish time.

    python -m benchmarks.shard_scaling --customers 20000 [--url postgresql://postgres@127.0.0.1:5432/postgres]

Measures the platform's own work per shard (feature SQL per id range, BG/NBD fit, validation, staging COPY) and
the publish (staging read, checks, partition swap). The model is a labelled stand-in (a fixed logistic formula,
no encoder): the model's own throughput is ``benchmarks`` stage ``score``. Each process stands for one Airflow
worker; two shards on a machine with two free cores is the 1 -> 2 worker scaling. A throwaway schema is
dropped at the end. Prints a JSON line per run, then the summary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import multiprocessing
import os
import signal
import sys
import tempfile
import time
import uuid

import numpy as np

logger = logging.getLogger("benchmarks.shard_scaling")
SCORE_DATE = dt.date(2025, 3, 1)


class FormulaPredictor:
    """Stand-in model (NOT the production model): p = sigmoid(-1.5 + 0.012 * recency - 0.25 * orders_90d)."""

    kind = "baseline"
    feature_names = ["days_since_last_order", "orders_90d"]

    def predict_proba(self, frame):
        x = frame[self.feature_names].astype("float64").fillna(0.0).to_numpy()
        return 1.0 / (1.0 + np.exp(-(-1.5 + 0.012 * x[:, 0] - 0.25 * x[:, 1])))


def _use_standin() -> None:
    import pipelines.registry
    import pipelines.scoring.segments

    pipelines.registry.load_model_version = lambda config, version, **options: FormulaPredictor()
    pipelines.scoring.segments.segment_model_for = lambda config, version: None


def _score(args) -> dict:
    config, run_id, shard = args
    from pipelines.scoring.shards import score_shard

    _use_standin()
    return score_shard(config, SCORE_DATE, "1", run_id, shard)


def _run(config, shards: int, population: int) -> dict:
    from pipelines.scoring.shards import plan_shards, publish_shards

    config = config.with_overrides({"scoring": {"shard_customers": -(-population // shards)}})
    run_id = f"bench-{shards}-{uuid.uuid4().hex[:6]}"
    plan = plan_shards(config, SCORE_DATE)
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(len(plan)) as pool:
        results = pool.map(_score, [(config, run_id, s) for s in plan])
    scored = time.perf_counter() - started
    published = publish_shards(config, SCORE_DATE, run_id, plan)
    total = time.perf_counter() - started
    return {
        "shards": len(plan),
        "rows": published["rows"],
        "score_seconds": round(scored, 2),
        "customers_per_second": round(published["rows"] / scored, 1),
        "per_shard_customers_per_second": [r["customers_per_second"] for r in results],
        "publish_seconds": published["publish_seconds"],
        "end_to_end_customers_per_second": round(published["rows"] / total, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument(
        "--url", default=os.environ.get("CHURN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout` still drops the throwaway schema

    from pipelines.config import Config
    from pipelines.data.generator import generate_sample_data
    from pipelines.scoring import population_count
    from pipelines.warehouse import open_warehouse

    tmp = tempfile.mkdtemp(prefix="shard-bench-")
    schema = f"bench_shards_{uuid.uuid4().hex[:8]}"
    config = Config().with_overrides(
        {
            "warehouse": {"url": args.url, "schema_name": schema},
            "registry": {"tracking_uri": f"sqlite:///{tmp}/mlflow.db", "artifact_location": f"{tmp}/mlartifacts"},
        }
    )
    try:
        with open_warehouse(config) as wh:
            wh.init_schema()
            generate_sample_data(
                wh, customers=args.customers, seed=0, start=dt.date(2024, 1, 1), end=dt.date(2025, 2, 28)
            )
            population = population_count(wh, config, SCORE_DATE)
        runs = []
        for shards in (1, 2, 1, 2):  # interleaved: the machine's load drifts
            runs.append(_run(config, shards, population))
            print(json.dumps(runs[-1]), flush=True)  # a run cut short by a timeout still leaves its figures
        best = {n: max((r for r in runs if r["shards"] == n), key=lambda r: r["customers_per_second"]) for n in (1, 2)}
        print(
            json.dumps(
                {
                    "customers": args.customers,
                    "population": population,
                    "cpus": os.cpu_count(),
                    "load1_before": round(os.getloadavg()[0], 1),
                    "runs": runs,
                    "speedup_2_vs_1": round(best[2]["customers_per_second"] / best[1]["customers_per_second"], 2),
                }
            )
        )
    finally:
        with open_warehouse(config) as wh:
            wh.drop_schema()


if __name__ == "__main__":
    main()
