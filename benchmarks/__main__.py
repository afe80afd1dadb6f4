"""``python -m benchmarks --scale 10k|100k|1m [--stages gen,features,...] [--repeat N] ...``"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path

from benchmarks.common import (
    ALL_STAGES,
    DEFAULT_STAGES,
    PROJECT_ROOT,
    Context,
    StageResult,
    StageSkipped,
    load1,
    parse_scale,
    scale_label,
)

logger = logging.getLogger("benchmarks")
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--scale", default="10k", help="customers: 200, 10k, 100k, 1m (default 10k)")
    p.add_argument(
        "--stages",
        default=",".join(DEFAULT_STAGES),
        help=f"comma list of {','.join(ALL_STAGES)} (default: all but demo)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="runs per measurement, the median is reported (default: 3 for fast stages, 1 for slow)",
    )
    p.add_argument(
        "--postgres-url",
        default=os.environ.get("CHURN_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="Postgres for write-back/feature build, in a throwaway schema; 'none' to skip "
        f"(default {DEFAULT_POSTGRES_URL}, skipped when unreachable)",
    )
    p.add_argument("--out", default=str(PROJECT_ROOT / "benchmarks" / "results"), help="results directory")
    p.add_argument(
        "--work-dir",
        default=str(PROJECT_ROOT / "data" / "bench"),
        help="generated warehouses and scratch files (git-ignored; a scale's warehouse is reused)",
    )
    p.add_argument(
        "--score-limit",
        type=int,
        default=512,
        help="customers scored per transformer variant (default 512: ~1 min per variant on 2 busy cores)",
    )
    p.add_argument("--bundle", default=None, help="trained model bundle directory for the score stage")
    p.add_argument(
        "--score-max-length",
        type=int,
        default=128,
        help="token budget the score stage runs the bundle at (default 128, the target's; a bundle trained "
        "at another length still scores correctly at this one)",
    )
    p.add_argument(
        "--quality-candidates",
        default="lightgbm,transformer",
        help="quality stage: lightgbm (always, with its no-BG/NBD ablation, and numeric_mlp) and optionally "
        "transformer (with the hybrid stacked on it) and text_only (the encoder with no numeric features)",
    )
    p.add_argument(
        "--quality-train-rows",
        default="",
        help="quality stage learning curve: comma-separated transformer train-row caps (e.g. 500,1000,2000); "
        "each refits transformer + hybrid (expensive on CPU)",
    )
    p.add_argument(
        "--quality-max-train",
        type=int,
        default=None,
        help="quality / finetune stages: transformer train rows (quality default: all on GPU, 2000 on CPU; "
        "finetune: 400)",
    )
    p.add_argument(
        "--quality-epochs",
        type=int,
        default=None,
        help="quality stage: fine-tuning epochs of every transformer it trains (default: training.epochs)",
    )
    p.add_argument(
        "--quality-eval-rows",
        type=int,
        default=None,
        help="quality stage: evaluate every candidate on a seeded sample of this many validation and test customers "
        "(the same sample for all; default: every row). On CPU at 10k customers the encoder's passes over full "
        "splits dominate the run",
    )
    p.add_argument(
        "--drift-seeds",
        default="42",
        help="drift stage: comma list of generator seeds, one pair of shops (with and without drift) each",
    )
    p.add_argument("--finetune-epochs", type=int, default=2, help="finetune stage: epochs per model (default 2)")
    p.add_argument(
        "--gpu-frame",
        default=None,
        help="gpu stage: Parquet of labelled rows with the bundle's features and text views (scripts/gpu_pack.py "
        "writes .gpu/frame.parquet)",
    )
    p.add_argument(
        "--gpu-rows", type=int, default=None, help="gpu stage: customers per timed scoring pass (default 100,000)"
    )
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(ALL_STAGES))
    if unknown:
        p.error(f"unknown stage(s) {unknown}; choose from {','.join(ALL_STAGES)}")
    args.stage_list = [s for s in ALL_STAGES if s in stages]
    try:
        args.customers = parse_scale(args.scale)
    except ValueError as exc:
        p.error(str(exc))
    if args.repeat is not None and args.repeat < 1:
        p.error("--repeat must be >= 1")
    return args


def _postgres(url: str | None) -> str | None:
    if not url or url.lower() == "none":
        return None
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3):
            return url
    except Exception as exc:
        logger.warning("Postgres at %s not reachable (%s): Postgres measurements skipped", url, exc)
        return None


def run_stage(name: str, ctx: Context) -> StageResult:
    from benchmarks.stages import get_stage

    logger.info("stage %s (scale %s, load1 %.2f)", name, ctx.scale, load1())
    start = time.perf_counter()
    try:
        result = get_stage(name).run(ctx)
    except StageSkipped as exc:
        result = StageResult(name, status="skipped", reason=str(exc))
    except Exception as exc:
        logger.error("stage %s failed: %s", name, exc)
        result = StageResult(
            name,
            status="error",
            reason=f"{type(exc).__name__}: {exc}".strip()[:600],
            info={"traceback": traceback.format_exc()[-3000:]},
        )
    result.wall_seconds = round(time.perf_counter() - start, 2)
    if not result.load_avg_1m:
        result.load_avg_1m.append(load1())
    logger.info(
        "stage %s: %s in %.1f s%s",
        name,
        result.status,
        result.wall_seconds,
        f" ({result.reason})" if result.reason else "",
    )
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("transformers", "httpx", "filelock", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from benchmarks.machine import machine_info
    from benchmarks.report import merge_run, render_markdown

    out_dir, work_dir = Path(args.out), Path(args.work_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(
        customers=args.customers,
        scale=scale_label(args.customers),
        out_dir=out_dir,
        work_dir=work_dir,
        repeat=args.repeat,
        postgres_url=_postgres(args.postgres_url),
        score_limit=args.score_limit,
        bundle=args.bundle,
        score_max_length=args.score_max_length,
    )
    ctx.shared["quality_candidates"] = tuple(c.strip() for c in args.quality_candidates.split(",") if c.strip())
    ctx.shared["quality_max_train"] = args.quality_max_train
    ctx.shared["quality_eval_rows"] = args.quality_eval_rows
    ctx.shared["quality_epochs"] = args.quality_epochs
    ctx.shared["drift_seeds"] = tuple(int(s) for s in args.drift_seeds.split(",") if s.strip())
    ctx.shared["finetune_epochs"] = args.finetune_epochs
    ctx.shared["gpu_frame"] = args.gpu_frame
    ctx.shared["gpu_rows"] = args.gpu_rows
    ctx.shared["quality_train_rows"] = tuple(int(r) for r in args.quality_train_rows.split(",") if r.strip())
    machine = machine_info()
    started = dt.datetime.now(dt.UTC)
    run = {
        "scale": ctx.scale,
        "customers": ctx.customers,
        "date": started.date().isoformat(),
        "started_at": started.isoformat(timespec="seconds"),
        "args": sys.argv[1:] if argv is None else argv,
        "postgres": bool(ctx.postgres_url),
        "load_avg_1m_at_start": load1(),
        "stages": {},
    }
    logger.info("benchmarks: scale %s, stages %s, machine %s", ctx.scale, ",".join(args.stage_list), machine["name"])
    for name in args.stage_list:
        run["stages"][name] = run_stage(name, ctx).to_json()
    run["load_avg_1m_at_end"] = load1()
    run["wall_seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)

    stem = f"{run['date']}-{machine['name']}"
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    doc = merge_run(json_path, machine, run)
    json_path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    markdown = render_markdown(doc)
    md_path.write_text(markdown)
    print(markdown)
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 1 if any(s["status"] == "error" for s in run["stages"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
