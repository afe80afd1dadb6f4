"""Child process of the memory stage: the streaming scoring pipeline, reporting its own peak RSS.

Full runs call the real ``pipelines.scoring.score_customers`` with the registry's model loader replaced
by ``load_bundle(--bundle)`` (or a constant predictor), so nothing but the model lookup differs from
production. Runs limited to the first N customers (and older code without ``score_customers``) use
the same pipeline spelled out here: ``iter_scoring_features`` (``scoring.chunk_rows`` per chunk) ->
``predict_proba`` -> buffered churn_scores rows -> one atomic ``replace_partition``.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import resource
import sys
import time

import numpy as np


def _status_mb(field: str) -> float:
    """VmHWM (peak RSS) / VmRSS of this process from /proc, in MiB.

    Why not ru_maxrss alone: Linux carries the parent's peak RSS across fork+exec into the child's
    RUSAGE_SELF, so a child of a big parent would report the parent's peak. VmHWM belongs to the
    child's own address space.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class _Constant:
    kind = "baseline"
    threshold = 0.5
    feature_names: list[str] = []

    def predict_proba(self, frame):
        return np.full(len(frame), 0.5)


def _score_customers(config, day, predictor) -> bool:
    """Run the real score_customers with ``predictor`` as the registered model; False if unavailable."""
    try:
        import pipelines.registry as registry
        from pipelines.scoring import score_customers
    except ImportError:
        return False
    registry.load_model_version = lambda *_a, **_k: predictor
    out = score_customers(config, day, "1", "bench-memory")
    _score_customers.result = {"rows": out["rows"], "tiers": out.get("tiers")}
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--predictor", choices=["constant", "bundle"], required=True)
    parser.add_argument("--bundle", default=None)
    parser.add_argument("--limit", type=int, default=None, help="stop after this many customers")
    parser.add_argument(
        "--duckdb-memory-limit",
        default=None,
        help="scoring.duckdb_memory_limit, e.g. 4GB (default: the config's, 1.5GB)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    import pyarrow as pa

    from pipelines.config import Config
    from pipelines.features import iter_scoring_features
    from pipelines.warehouse import connect

    overrides = {"warehouse": {"url": f"duckdb:///{args.db}"}}
    if args.duckdb_memory_limit:
        overrides["scoring"] = {"duckdb_memory_limit": args.duckdb_memory_limit}
    config = Config().with_overrides(overrides)
    chunk_rows = config.scoring.chunk_rows if not args.limit else min(config.scoring.chunk_rows, args.limit)
    day = config.sample_data.end + dt.timedelta(days=1)
    kind = "constant"
    if args.predictor == "bundle":
        import torch

        from pipelines.models import load_bundle

        torch.set_num_threads(config.training.num_threads or os.cpu_count() or 1)
        model = load_bundle(args.bundle, device="cpu", **config.scoring.predictor_options())
        kind = model.kind
        predict = model.predict_proba
    else:

        def predict(frame):
            return np.full(len(frame), 0.5)

    rss_before = _status_mb("VmRSS")
    start = time.perf_counter()
    if not args.limit and _score_customers(config, day, model if args.predictor == "bundle" else _Constant()):
        print(
            json.dumps(
                {
                    "predictor": kind,
                    "pipeline": "pipelines.scoring.score_customers",
                    **_score_customers.result,
                    "seconds": time.perf_counter() - start,
                    "maxrss_mb": _status_mb("VmHWM"),
                    "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                    "rss_after_imports_and_model_mb": rss_before,
                }
            )
        )
        return 0
    rows, chunks, parts = 0, 0, []
    with connect(f"duckdb:///{args.db}", duckdb_memory_limit=config.scoring.duckdb_memory_limit) as wh:
        for frame in iter_scoring_features(wh, config, day, chunk_rows):
            if args.limit:
                frame = frame.head(args.limit - rows)
            p = np.clip(np.asarray(predict(frame), dtype=np.float64), 0.0, 1.0)
            n = len(frame)
            tiers = np.full(n, "low", dtype=object)
            for tier, bound in sorted(config.scoring.risk_tiers.items(), key=lambda kv: kv[1]):
                tiers[p >= bound] = tier
            parts.append(
                pa.table(
                    {
                        "customer_id": pa.array(frame["customer_id"].to_numpy(dtype=np.int64)),
                        "score_date": pa.array([day] * n, pa.date32()),
                        "churn_probability": pa.array(p),
                        "risk_tier": pa.array(tiers.tolist(), pa.string()),
                        "model_name": pa.array([config.registry.model_name] * n, pa.string()),
                        "model_version": pa.array([f"bench-{kind}"] * n, pa.string()),
                        "run_id": pa.array(["bench-memory"] * n, pa.string()),
                        "scored_at": pa.array([dt.datetime.now(dt.UTC)] * n, pa.timestamp("us", tz="UTC")),
                    }
                )
            )
            rows += n
            chunks += 1
            if args.limit and rows >= args.limit:
                break
        written = wh.replace_partition("churn_scores", pa.concat_tables(parts), "score_date", day) if parts else 0
    print(
        json.dumps(
            {
                "predictor": kind,
                "pipeline": "benchmarks emulation (limited run)",
                "rows": rows,
                "chunks": chunks,
                "chunk_rows": chunk_rows,
                "written": written,
                "seconds": time.perf_counter() - start,
                "maxrss_mb": _status_mb("VmHWM"),
                "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                "rss_after_imports_and_model_mb": rss_before,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
