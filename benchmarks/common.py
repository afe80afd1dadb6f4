"""Shared pieces of the harness: scales, timing, results, the run context."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("benchmarks")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STAGES = ("gen", "features", "train", "score", "writeback", "memory")
ALL_STAGES = (*DEFAULT_STAGES, "retention", "demo", "drift", "explain", "quality", "finetune", "gpu")


class StageSkipped(Exception):  # noqa: N818 - "skipped" reads better than "error" here
    """The stage cannot run here (pipeline code missing, no GPU, no Postgres); the message says why."""


class NotImplementedStage(StageSkipped):
    """The pipeline code this stage measures is not there yet."""

    def __init__(self, what: str) -> None:
        super().__init__(f"not implemented: {what}")


def parse_scale(text: str) -> int:
    """'10k' -> 10_000, '1m' -> 1_000_000, '200' -> 200."""
    value = str(text).strip().lower().replace("_", "")
    mult = 1
    if value.endswith("k"):
        mult, value = 1_000, value[:-1]
    elif value.endswith("m"):
        mult, value = 1_000_000, value[:-1]
    try:
        n = int(float(value) * mult)
    except ValueError:
        raise ValueError(f"bad scale {text!r}: use e.g. 200, 10k, 100k, 1m") from None
    if n <= 0:
        raise ValueError(f"scale must be positive, got {text!r}")
    return n


def scale_label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def load1() -> float:
    """1-minute load average: other processes on a shared machine make timings noisy."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not on Linux
        return float("nan")


def maxrss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(who).ru_maxrss / 1024.0


@contextlib.contextmanager
def timer() -> Iterator[dict[str, float]]:
    out: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - start


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


@dataclass
class Metric:
    value: float
    unit: str
    description: str = ""
    runs: list[float] = field(default_factory=list)  # every repeat, the value is their median

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class StageResult:
    name: str
    status: str = "ok"  # ok | skipped | error
    reason: str = ""
    metrics: dict[str, Metric] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # labels, sizes, caveats (not numbers we compare)
    notes: list[str] = field(default_factory=list)
    load_avg_1m: list[float] = field(default_factory=list)  # at the start of each repeat and at the end
    wall_seconds: float = 0.0
    repeat: int = 1

    def add(self, key: str, runs: list[float] | float, unit: str, description: str = "") -> Metric:
        runs = [float(v) for v in (runs if isinstance(runs, list) else [runs])]
        metric = Metric(value=median(runs), unit=unit, description=description, runs=runs)
        self.metrics[key] = metric
        return metric

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["metrics"] = {k: m.to_json() for k, m in self.metrics.items()}
        return data


def repeat_runs(n: int, fn: Callable[[int], dict[str, float]], result: StageResult) -> dict[str, list[float]]:
    """Run ``fn(i)`` n times; collect each returned number into lists (for medians)."""
    collected: dict[str, list[float]] = {}
    for i in range(n):
        result.load_avg_1m.append(load1())
        logger.info("  %s: repeat %d/%d (load1 %.2f)", result.name, i + 1, n, result.load_avg_1m[-1])
        for key, value in fn(i).items():
            collected.setdefault(key, []).append(value)
    return collected


@dataclass
class Context:
    """What one harness invocation knows: scale, options, and shared state between stages."""

    customers: int
    scale: str
    out_dir: Path
    work_dir: Path
    repeat: int | None = None  # None: each stage's default
    postgres_url: str | None = None
    score_limit: int = 512
    bundle: str | None = None
    score_max_length: int | None = None  # None: the bundle's own
    keep_work: bool = False
    shared: dict[str, Any] = field(default_factory=dict)
    config_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # applied by config(), e.g. the encoder

    def repeats(self, default: int) -> int:
        return self.repeat if self.repeat else default

    @property
    def small(self) -> bool:
        return self.customers <= 10_000

    def config(self, **overrides: Any):
        """The default config with every writable location under the work dir."""
        from pipelines.config import Config

        base = {
            "warehouse": {"url": f"duckdb:///{self.duckdb_path}"},
            "registry": {
                "tracking_uri": f"sqlite:///{self.work_dir}/mlflow.db",
                "artifact_location": str(self.work_dir / "mlartifacts"),
            },
            "dataset": {"output_dir": str(self.work_dir / "datasets")},
            "monitoring": {"reports_dir": str(self.work_dir / "reports")},
            "sample_data": {"customers": self.customers},
        }
        for key, value in (*self.config_overrides.items(), *overrides.items()):
            base.setdefault(key, {}).update(value)
        return Config().with_overrides(base)

    @property
    def duckdb_path(self) -> Path:
        return self.work_dir / f"warehouse-{self.scale}.duckdb"


def require(module: str, *names: str):
    """Import ``module`` and return the named attributes, or raise NotImplementedStage."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise NotImplementedStage(f"{module} ({exc})") from None
    found = []
    for name in names:
        obj = getattr(mod, name, None)
        if obj is None:
            raise NotImplementedStage(f"{module}.{name}")
        found.append(obj)
    return found[0] if len(found) == 1 else tuple(found)
