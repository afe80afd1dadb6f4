"""Entry point for multi-process training with ``torchrun``.

    torchrun --nproc_per_node 4 -m pipelines.training.distributed --manifest data/datasets/2025-06-01/manifest.json \\
        --output-dir runs/2025-06-01

Every rank trains the transformer on its shard of the length buckets (DistributedDataParallel, nccl on
CUDA, gloo on CPU); rank 0 also trains the baseline, saves both bundles and logs. Without torchrun it
runs as one process.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict

from pipelines.config import load_config
from pipelines.models.device import dist_context_from_env
from pipelines.training.fit import fit_candidates

logger = logging.getLogger(__name__)


def run(config, sets, output_dir):
    """Train both candidates, then leave the process group cleanly."""
    try:
        return fit_candidates(config, sets, output_dir)
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def summary(result) -> dict:
    """A JSON-safe summary of a FitResult (no predictors)."""
    out = {"chosen": result.chosen, "notes": result.notes}
    for cand in (result.transformer, result.baseline):
        data = asdict(cand)
        data.pop("predictor", None)
        data["bundle_dir"] = str(cand.bundle_dir)
        out[cand.kind] = data
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the churn candidates (torchrun-aware).")
    parser.add_argument("--manifest", required=True, help="manifest.json written by build_training_sets")
    parser.add_argument("--output-dir", required=True, help="where transformer/ and baseline/ bundles go")
    parser.add_argument("--config", default=None, help="config YAML (default: $CHURN_CONFIG or configs/default.yaml)")
    args = parser.parse_args(argv)
    ctx = dist_context_from_env()
    logging.basicConfig(
        level=logging.INFO if ctx.is_main else logging.WARNING,
        format=f"%(asctime)s [rank {ctx.rank}] %(levelname)s %(name)s: %(message)s",
    )
    from pipelines.datasets import load_training_sets

    config = load_config(args.config)
    result = run(config, load_training_sets(args.manifest), args.output_dir)
    if ctx.is_main:
        sys.stdout.write(json.dumps(summary(result), indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
