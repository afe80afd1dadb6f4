"""Stage memory: peak resident memory (ru_maxrss) of the streaming scoring pipeline, in subprocesses.

At full scale the model call is a constant predictor and the LightGBM baseline bundle (the transformer
is too slow on this CPU for every customer); the transformer's own memory is measured on a smaller run
and added: estimate = peak(LightGBM, all customers) + [peak(transformer, N) - peak(LightGBM, N)].
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from benchmarks.bundles import (
    FIT_ROWS,
    find_trained_bundle,
    labelled_frame,
    standin_baseline_bundle,
    standin_transformer_bundle,
)
from benchmarks.common import PROJECT_ROOT, Context, StageResult, load1, require
from benchmarks.stages.data import ensure_data

logger = logging.getLogger("benchmarks.memory")
TRANSFORMER_ROWS = 1024


def child(ctx: Context, predictor: str, bundle: str | None = None, limit: int | None = None) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.stages.memory_child",
        "--db",
        str(ctx.duckdb_path),
        "--predictor",
        predictor,
    ]
    if bundle:
        cmd += ["--bundle", str(bundle)]
    if limit:
        cmd += ["--limit", str(limit)]
    logger.info("  memory child: %s", " ".join(cmd[3:]))
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child ({predictor} {bundle or ''}) failed: {proc.stderr[-1500:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    logger.info("  -> %d rows, peak RSS %.0f MiB, %.1f s", out["rows"], out["maxrss_mb"], out["seconds"])
    return out


def run(ctx: Context) -> StageResult:
    require("pipelines.features", "iter_scoring_features")
    require("pipelines.models", "load_bundle")
    counts = ensure_data(ctx)
    config = ctx.config()
    result = StageResult("memory", repeat=1)
    fit, labels, _ = labelled_frame(ctx, config, FIT_ROWS)
    baseline = standin_baseline_bundle(ctx, config, fit, labels)
    transformer = (
        ctx.shared.get("transformer_bundle")
        or find_trained_bundle(ctx)
        or standin_transformer_bundle(ctx, config, fit, labels)
    )
    small = min(ctx.customers, TRANSFORMER_ROWS)
    runs = {}
    for key, predictor, bundle, limit in (
        ("constant", "constant", None, None),
        ("lightgbm", "bundle", baseline, None),
        ("lightgbm_small", "bundle", baseline, small),
        ("transformer_small", "bundle", transformer, small),
    ):
        result.load_avg_1m.append(load1())
        runs[key] = child(ctx, predictor, bundle, limit)
    full = runs["lightgbm"]["rows"]
    quant = f"precision {config.scoring.precision}"
    result.add(
        "peak_rss_constant_mb",
        runs["constant"]["maxrss_mb"],
        "MiB",
        f"streaming features + CONSTANT predictor + write-back, {runs['constant']['rows']:,} customers",
    )
    result.add(
        "peak_rss_lightgbm_mb",
        runs["lightgbm"]["maxrss_mb"],
        "MiB",
        f"streaming features + LightGBM baseline bundle + write-back, {full:,} customers",
    )
    result.add(
        "peak_rss_transformer_small_mb",
        runs["transformer_small"]["maxrss_mb"],
        "MiB",
        f"same with the transformer bundle ({quant}), first {runs['transformer_small']['rows']:,} customers",
    )
    extra = runs["transformer_small"]["maxrss_mb"] - runs["lightgbm_small"]["maxrss_mb"]
    result.add("transformer_extra_mb", extra, "MiB", f"transformer minus LightGBM at {small:,} customers")
    result.add(
        "peak_rss_transformer_estimate_mb",
        runs["lightgbm"]["maxrss_mb"] + max(extra, 0.0),
        "MiB",
        f"ESTIMATE (not measured) for the transformer over all {full:,} customers: LightGBM run + extra",
    )
    result.info.update(
        {
            "customers": ctx.customers,
            "row_counts": counts,
            "children": runs,
            "transformer_bundle": str(transformer),
            "baseline_bundle": str(baseline),
            "chunk_rows": config.scoring.chunk_rows,
            "method": "peak RSS (VmHWM; ru_maxrss also recorded) of a child process: python -m benchmarks.stages.memory_child",
            "pipeline": "iter_scoring_features -> predict_proba -> buffered churn_scores -> replace_partition",
        }
    )
    result.notes.append(
        "transformer peak RSS over all customers is an extrapolation (LightGBM run + transformer "
        "extra from a smaller run); the baseline bundle is a stand-in fitted by the harness"
    )
    result.load_avg_1m.append(load1())
    return result
