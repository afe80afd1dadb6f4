"""Stage demo (only with --stages demo): wall time of ``make demo`` (scripts/demo.sh) stage by stage.

The demo runs in the work dir's own warehouse, MLflow store and Airflow home, so it never touches
the shared defaults. The demo prints a ``== stage timings`` table at the end (``name   12 s``); those
numbers are used. Without it, stage boundaries are the demo's ``== name`` headers and the time
between them as the lines arrive.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import time

from benchmarks.common import PROJECT_ROOT, Context, StageResult, StageSkipped, load1

logger = logging.getLogger("benchmarks.demo")

ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
HEADER_RE = re.compile(r"^\s*==+>?\s+(?P<name>.+?)\s*$")
TIMING_ROW_RE = re.compile(r"^(?P<name>\S.*?)\s+(?P<sec>\d+(?:\.\d+)?)\s*s\s*$")


def parse_timeline(lines: list[tuple[float, str]], total: float) -> list[dict]:
    """Stages from (arrival_time, line) pairs: the printed timings table, else time between headers."""
    clean = [(t, ANSI_RE.sub("", line)) for t, line in lines]
    steps: list[dict] = []
    in_table = False
    for _, line in clean:
        header = HEADER_RE.match(line)
        if header:
            in_table = header.group("name").strip().lower() == "stage timings"
            continue
        row = TIMING_ROW_RE.match(line) if in_table else None
        if row and row.group("name").strip() != "total":
            steps.append({"stage": row.group("name").strip(), "seconds": float(row.group("sec")), "source": "printed"})
    if steps:
        return steps
    for t, line in clean:
        header = HEADER_RE.match(line)
        if header:
            if steps:
                steps[-1]["seconds"] = round(t - steps[-1]["start"], 2)
            steps.append({"stage": header.group("name")[:80], "start": t, "seconds": None, "source": "line times"})
    if steps and steps[-1]["seconds"] is None:
        steps[-1]["seconds"] = round(total - steps[-1]["start"], 2)
    return steps


def run(ctx: Context) -> StageResult:
    script = PROJECT_ROOT / "scripts" / "demo.sh"
    if not script.exists():
        raise StageSkipped("not implemented: scripts/demo.sh")
    work = ctx.work_dir / "demo"
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "CHURN_WAREHOUSE_URL": f"duckdb:///{work}/warehouse.duckdb",
            "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db",
            "AIRFLOW_HOME": str(work / "airflow"),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONPATH": str(PROJECT_ROOT) + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
            "PATH": f"{PROJECT_ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}",
        }
    )
    result = StageResult("demo", repeat=1)
    result.load_avg_1m.append(load1())
    start = time.perf_counter()
    lines: list[tuple[float, str]] = []
    proc = subprocess.Popen(
        ["bash", str(script)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append((time.perf_counter() - start, line.rstrip("\n")))
        logger.debug("demo| %s", line.rstrip())
    rc = proc.wait()
    total = time.perf_counter() - start
    result.load_avg_1m.append(load1())
    steps = parse_timeline(lines, total)
    result.add("total_seconds", total, "s", f"bash scripts/demo.sh (exit {rc})")
    for step in steps:
        key = re.sub(r"[^a-z0-9]+", "_", step["stage"].lower()).strip("_")[:40] or "step"
        result.add(f"step_{key}_seconds", step["seconds"], "s", f"{step['stage']} ({step['source']})")
    result.info.update({"exit_code": rc, "steps": steps, "output_tail": [line for _, line in lines[-15:]]})
    if rc != 0:
        result.status = "error"
        result.reason = f"demo exited with {rc}"
    return result
