"""Feature + text-view build on Spark SQL (local mode) next to DuckDB, on the same generated data.

    python -m benchmarks.spark_features --customers 100000 [--master 'local[2]'] [--repeat 2] [--out FILE.md]

Generates the customers once into a DuckDB file, copies the raw tables into a Spark warehouse (Parquet folders,
``spark+local:///``), then times ``build_features`` at one cutoff on each engine (the same SQL text; Spark through
``pipelines.warehouse.spark_sql``), checks that both return the same rows, and writes a markdown summary with the
machine's CPU flags and load average. The SparkSession start is timed apart (once per process).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np

logger = logging.getLogger("benchmarks.spark_features")
START, END = dt.date(2023, 1, 1), dt.date(2025, 12, 31)
CUTOFF = dt.date(2025, 12, 1)


def _cpu_flags() -> str:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = sorted(set(re.findall(r"\b(avx2|avx512f|avx512_bf16|amx_bf16|amx_tile|avx512_vnni)\b", text)))
    model = re.search(r"model name\s*:\s*(.+)", text)
    return f"{model.group(1).strip() if model else '?'}; {os.cpu_count()} cores; flags: {' '.join(flags) or '-'}"


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load average:")[-1].strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work-dir", default=None, help="keep the generated warehouses here (default: a temp dir)")
    parser.add_argument("--out", default=None, help="markdown summary file (default: print only)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from pipelines.config import Config
    from pipelines.contract import RAW_TABLES
    from pipelines.data.generator import generate_sample_data
    from pipelines.features import build_features, numeric_feature_names
    from pipelines.warehouse import connect

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="spark-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    config = Config()
    duck_url = f"duckdb:///{work}/wh.duckdb"
    spark_url = (
        f"spark+local:///{work.resolve()}/spark?master={quote(args.master)}"
        f"&spark.driver.memory={quote(args.driver_memory)}"
    )
    loads = {"start": _load()}
    started = time.perf_counter()
    with connect(duck_url) as duck:
        duck.init_schema()
        counts = generate_sample_data(duck, customers=args.customers, seed=args.seed, start=START, end=END)
    gen_seconds = time.perf_counter() - started
    started = time.perf_counter()
    spark = connect(spark_url)
    version = spark.spark.version  # the session starts at the first use: start it here, outside the timed builds
    session_seconds = time.perf_counter() - started
    spark.drop_schema()
    spark.init_schema()
    started = time.perf_counter()
    with connect(duck_url) as duck:
        for table in RAW_TABLES:
            spark.bulk_load(table, duck.query_arrow(duck.render(f"SELECT * FROM {{{table.name}}}")))
    copy_seconds = time.perf_counter() - started

    runs: dict[str, list[float]] = {"duckdb": [], "spark": []}
    frames = {}
    for _ in range(args.repeat):  # alternate the engines so a load change hits both
        for engine in ("duckdb", "spark"):
            wh = connect(duck_url) if engine == "duckdb" else spark
            started = time.perf_counter()
            frames[engine] = build_features(wh, config, [CUTOFF])
            runs[engine].append(time.perf_counter() - started)
            if engine == "duckdb":
                wh.close()
            loads[f"after {engine} run {len(runs[engine])}"] = _load()
    names = numeric_feature_names(config)
    same_rows = frames["duckdb"]["customer_id"].tolist() == frames["spark"]["customer_id"].tolist()
    max_diff = float(np.max(np.abs(frames["duckdb"][names].to_numpy() - frames["spark"][names].to_numpy())))
    same_text = bool((frames["duckdb"]["text_view"] == frames["spark"]["text_view"]).all())
    duck_s, spark_s = float(np.median(runs["duckdb"])), float(np.median(runs["spark"]))
    result = {
        "customers": args.customers,
        "orders_plus_events": counts.get("orders", 0) + counts.get("events", 0),
        "feature_rows": len(frames["duckdb"]),
        "generate_duckdb_seconds": round(gen_seconds, 1),
        "spark_session_start_seconds": round(session_seconds, 1),
        "copy_to_spark_seconds": round(copy_seconds, 1),
        "duckdb_build_seconds": [round(s, 1) for s in runs["duckdb"]],
        "spark_build_seconds": [round(s, 1) for s in runs["spark"]],
        "spark_over_duckdb": round(spark_s / duck_s, 2),
        "same_rows": same_rows,
        "same_text_views": same_text,
        "max_abs_feature_diff": max_diff,
        "master": args.master,
        "spark_version": version,
        "load_average": loads,
        "cpu": _cpu_flags(),
    }
    print(json.dumps(result))
    if args.out:
        lines = [
            f"# Spark SQL vs DuckDB feature build, {args.customers:,} customers ({dt.date.today()})",
            "",
            f"Command: `python -m benchmarks.spark_features --customers {args.customers} --master '{args.master}'"
            f" --repeat {args.repeat}`",
            "",
            f"Machine: {result['cpu']}. Load average (1, 5, 15 min): "
            + "; ".join(f"{k}: {v}" for k, v in loads.items()),
            "",
            "| figure | value |",
            "|---|---|",
            f"| customers / orders+events | {args.customers:,} / {result['orders_plus_events']:,} |",
            f"| feature rows (population at {CUTOFF}) | {result['feature_rows']:,} |",
            f"| DuckDB build_features, 1 cutoff (s, each run) | {', '.join(map(str, result['duckdb_build_seconds']))} |",
            f"| Spark {args.master} build_features, 1 cutoff (s, each run) | "
            f"{', '.join(map(str, result['spark_build_seconds']))} |",
            f"| Spark / DuckDB (medians) | {result['spark_over_duckdb']}x |",
            f"| SparkSession start (once per process) | {result['spark_session_start_seconds']} s |",
            f"| copy of the raw tables DuckDB -> Spark Parquet | {result['copy_to_spark_seconds']} s |",
            f"| same rows / same text views / max abs feature difference | {same_rows} / {same_text} / {max_diff:.2e} |",
            "",
        ]
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
