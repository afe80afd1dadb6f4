"""One module per benchmark stage; each exposes ``run(ctx) -> StageResult``."""

from __future__ import annotations

import importlib

STAGE_MODULES = {
    "gen": "benchmarks.stages.gen",
    "features": "benchmarks.stages.features",
    "train": "benchmarks.stages.train",
    "score": "benchmarks.stages.score",
    "writeback": "benchmarks.stages.writeback",
    "memory": "benchmarks.stages.memory",
    "retention": "benchmarks.stages.retention",
    "explain": "benchmarks.stages.explain",
    "demo": "benchmarks.stages.demo",
    "drift": "benchmarks.stages.drift",
    "quality": "benchmarks.stages.quality",
    "finetune": "benchmarks.stages.finetune",
    "gpu": "benchmarks.stages.gpu",
}


def get_stage(name: str):
    return importlib.import_module(STAGE_MODULES[name])
