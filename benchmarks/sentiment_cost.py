"""What review-sentiment features cost at the demo's scale: the training job, the feature SQL, the daily refresh.

    python -m benchmarks.sentiment_cost [--customers 1500] [--output benchmarks/results/DATE-HOST-sentiment.md]

On a throwaway DuckDB warehouse with the demo's sample data (``configs/demo.yaml``, history running one week
past the demo's as-of date so the refresh has new reviews):

- the training DAG's ``score_review_sentiment`` (one batched encoder pass over every review text before as-of,
  the head, its out-of-fold values, the table rewrite);
- the training sets' feature SQL with ``review_sentiment`` empty and filled (the join's cost, same run);
- the scoring DAG's ``score_review_sentiment`` on the as-of date (every row reused) and a week later (that
  week's new reviews encoded, the encoder load included);
- the encoder pass in fp32 and in bf16 (what ``encode_texts`` picks on CPUs with AMX / AVX512-BF16) over the same
  ``PRECISION_TEXTS`` texts, same run, and how far bf16 moves the head's sentiment.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import re
import tempfile
import time
from pathlib import Path

logger = logging.getLogger("benchmarks.sentiment_cost")
AS_OF = dt.date(2026, 1, 1)
LATER = dt.date(2026, 1, 8)
PRECISION_TEXTS = 500


def _cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni")
    return " ".join(sorted({f for f in re.findall(r"\w+", text) if f in wanted}))


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _precision(texts: list[str], encoder: str, head) -> dict:
    """Seconds of the encoder pass in fp32 (mean of two, around the bf16 one) and bf16; the head's change."""
    import numpy as np

    from pipelines.models.network import resolve_encoder_path
    from pipelines.models.sentiment import encode_texts

    path = resolve_encoder_path(encoder)
    encode_texts(texts[:32], path, precision="fp32")  # warm-up: the first pass pays for loading
    a, first = _timed(lambda: encode_texts(texts, path, precision="fp32"))
    b, bf16 = _timed(lambda: encode_texts(texts, path, precision="bf16"))
    _, second = _timed(lambda: encode_texts(texts, path, precision="fp32"))
    pa, pb = head.predict(a), head.predict(b)
    delta = np.abs(pa - pb)
    return {
        "fp32": (first + second) / 2,
        "bf16": bf16,
        "max_delta": float(delta.max()),
        "mean_delta": float(delta.mean()),
        "flips": int(((pa >= 0.5) != (pb >= 0.5)).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1500)
    parser.add_argument("--output", default=None, help="markdown file to write (default: print only)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from pipelines.config import load_config
    from pipelines.data.generator import generate_sample_data
    from pipelines.datasets.build import choose_cutoffs
    from pipelines.features import build_features
    from pipelines.scoring.sentiment import update_review_sentiment
    from pipelines.training.sentiment import load_head, score_review_sentiment
    from pipelines.warehouse import open_warehouse

    with tempfile.TemporaryDirectory(prefix="churn-sentiment-bench-") as tmp:
        config = load_config("configs/demo.yaml").with_overrides(
            {
                "warehouse": {"url": f"duckdb:///{tmp}/wh.duckdb"},
                "dataset": {"output_dir": f"{tmp}/datasets"},
            }
        )
        cutoffs = [c for split in choose_cutoffs(config, AS_OF).values() for c in split]
        with open_warehouse(config) as wh:
            wh.init_schema()
            generate_sample_data(wh, customers=args.customers, seed=42, start=dt.date(2023, 1, 1), end=LATER)
            reviews = wh.row_count("reviews")
            _, sql_empty = _timed(lambda: build_features(wh, config, cutoffs))
        report, job_seconds = _timed(lambda: score_review_sentiment(config, AS_OF))
        head = load_head(config, report["head_id"])
        with open_warehouse(config) as wh:
            _, sql_full = _timed(lambda: build_features(wh, config, cutoffs))
            same_day = update_review_sentiment(wh, head, AS_OF)
            week = update_review_sentiment(wh, head, LATER)
        with open_warehouse(config) as wh:
            texts = wh.query_df(
                wh.render("SELECT review_text FROM {reviews} WHERE review_text IS NOT NULL ORDER BY review_id")
            )["review_text"].tolist()[:PRECISION_TEXTS]
    precision = _precision(texts, config.model.encoder, head)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    rows = [
        ("reviews in the warehouse", f"{reviews:,}", ""),
        (
            "training: score_review_sentiment",
            f"{job_seconds:.1f} s",
            f"{report['reviews_scored']:,} review texts encoded once, head + 5 folds, table rewritten",
        ),
        (
            "training sets' feature SQL, review_sentiment empty",
            f"{sql_empty:.2f} s",
            f"{len(cutoffs)} cutoffs",
        ),
        (
            "training sets' feature SQL, review_sentiment filled",
            f"{sql_full:.2f} s",
            f"ratio {sql_full / sql_empty:.2f} (same run)",
        ),
        ("scoring refresh on the as-of date", f"{same_day['seconds']:.2f} s", f"{same_day['computed']} computed"),
        (
            "scoring refresh a week later",
            f"{week['seconds']:.2f} s",
            f"{week['computed']} new reviews ({week['encoded']} texts encoded, encoder load included), "
            f"{week['reused']:,} reused",
        ),
        (
            f"encoder pass over {len(texts)} review texts: fp32 / bf16",
            f"{precision['fp32']:.1f} s / {precision['bf16']:.1f} s",
            f"bf16 {precision['fp32'] / precision['bf16']:.2f}x faster (same run); sentiment moved by at most "
            f"{precision['max_delta']:.4f} (mean {precision['mean_delta']:.5f}), {precision['flips']} crossed 0.5",
        ),
        (
            "head accuracy (held-out random 20% / reviews after its cutoff)",
            f"{report['heldout_accuracy']:.3f} / {report.get('later_accuracy', float('nan')):.3f}",
            f"majority class {report['heldout_majority_class_accuracy']:.3f}; trained before "
            f"{report['trained_before']}",
        ),
    ]
    lines = [
        f"# Review-sentiment features: cost at the demo's scale ({args.customers:,} customers)",
        "",
        f"Command: `python -m benchmarks.sentiment_cost --customers {args.customers}`",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, flags: {_cpu_flags()}; "
        f"load average (1/5/15 min) at the end: {load}",
        "",
        "| what | figure | note |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        "Report of the head: `" + json.dumps({k: v for k, v in report.items() if k != "seconds"}) + "`",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.output:
        Path(args.output).write_text(text)


if __name__ == "__main__":
    main()
