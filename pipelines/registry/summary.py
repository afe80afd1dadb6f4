"""The Markdown summary of one training run: candidates side by side, the registered version, the gate."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines.config import Config
from pipelines.tracking import TAG_KIND, TAG_OTHER_KIND
from pipelines.xcom import small_dict

logger = logging.getLogger(__name__)

RUN_SUMMARY_DIR = "runs"  # under monitoring.reports_dir


def render_run_summary(
    *,
    as_of: str,
    run_id: str,
    version: str,
    metrics: Mapping[str, Any] | None,
    gate: Mapping[str, Any] | None,
    airflow_run_id: str | None = None,
    model_name: str | None = None,
    candidates: Mapping[str, Any] | None = None,
) -> str:
    """Markdown summary of one training run (what was trained, how it scored, what the gate decided)."""
    gate = dict(gate or {})
    promoted = gate.get("promoted")
    lines = [
        f"# Churn training run {as_of}",
        "",
        f"- as-of date: `{as_of}`",
        f"- Airflow run: `{airflow_run_id or '-'}`",
        f"- MLflow run: `{run_id}`",
        f"- registered: `{model_name or 'model'}` version `{version}`",
        f"- promotion gate: **{'promoted to @champion' if promoted else 'not promoted'}**",
    ]
    for key in ("reason", "reasons", "decision", "champion_version"):
        if gate.get(key) not in (None, "", []):
            value = gate[key]
            value = "; ".join(map(str, value)) if isinstance(value, list | tuple) else value
            lines.append(f"- gate {key.replace('_', ' ')}: {value}")
    if candidates and candidates.get("rows"):
        kinds = list(candidates.get("kinds") or ("transformer", "baseline"))
        lines += [
            "",
            f"Candidates (registered: **{candidates.get('chosen', '?')}**):",
            "",
            "| metric | " + " | ".join(f"{kind} {split}" for kind in kinds for split in ("val", "test")) + " |",
            "|---|" + "---|" * (2 * len(kinds)),
        ]
        for name, values in candidates["rows"].items():
            cells = " | ".join("-" if v is None else f"{v:.4f}" for v in values)
            lines.append(f"| {name} | {cells} |")
        if "bgnbd" in kinds:
            lines += ["", "bgnbd: the classic BG/NBD model (fewer expected purchases = higher risk), a reference only."]
        if candidates.get("notes"):
            lines += ["", f"Notes: {candidates['notes']}"]
        lines += ["", "Test metrics of the registered model:"]
    scalars = small_dict(metrics, limit=60)
    if scalars:
        lines += ["", "| metric | value |", "|---|---|"]
        lines += [
            f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in sorted(scalars.items())
        ]
    other = {
        k: v for k, v in gate.items() if k not in {"promoted", "reason", "reasons", "decision", "champion_version"}
    }
    if other:
        lines += ["", "Gate detail:", "", "```json", json.dumps(small_dict(other), indent=2, default=str), "```"]
    return "\n".join(lines) + "\n"


def publish_run_summary(
    config: Config,
    *,
    as_of: str,
    run_id: str,
    version: str,
    metrics: Mapping[str, Any] | None = None,
    gate: Mapping[str, Any] | None = None,
    airflow_run_id: str | None = None,
) -> str:
    """Write ``<reports_dir>/runs/training_<as_of>_v<version>.md``, log it, and return its path."""
    text = render_run_summary(
        as_of=as_of,
        run_id=run_id,
        version=str(version),
        metrics=metrics,
        gate=gate,
        airflow_run_id=airflow_run_id,
        model_name=config.registry.model_name,
        candidates=candidate_comparison(config, run_id),
    )
    out_dir = config.resolve_path(config.monitoring.reports_dir) / RUN_SUMMARY_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"training_{as_of}_v{version}.md"
    path.write_text(text)
    logger.info("run summary written to %s\n%s", path, text)
    return str(Path(path))


SUMMARY_METRICS = ("pr_auc", "roc_auc", "brier", "ece", "lift_at_10", "capture_at_20")


def candidate_comparison(config: Config, run_id: str) -> dict[str, Any]:
    """Every candidate's validation and test metrics from the MLflow run, side by side.

    Why in the summary: the platform never hides that the transformer lost (or won) against the baseline.
    An unreachable tracking server leaves the table out rather than failing the run.
    """
    try:
        from pipelines import tracking

        run = tracking.get_run(tracking.client_for(config), run_id)
    except Exception as exc:  # the summary is informative; the model is already registered
        logger.warning("could not read MLflow run %s for the candidate table: %s", run_id, exc)
        return {}
    metrics, tags = run.data.metrics, run.data.tags
    kinds = [tags.get(TAG_KIND), *filter(None, tags.get(TAG_OTHER_KIND, "").split(","))]
    kinds = sorted(filter(None, kinds))
    if any(k.startswith("bgnbd_test_") for k in metrics):  # the evaluation job's buy-till-you-die reference
        kinds.append("bgnbd")
    rows = {
        name: [metrics.get(f"{kind}_{split}_{name}") for kind in kinds for split in ("val", "test")]
        for name in SUMMARY_METRICS
    }
    return {
        "kinds": kinds,
        "chosen": tags.get(TAG_KIND),
        "notes": tags.get("notes"),
        "rows": {name: values for name, values in rows.items() if any(v is not None for v in values)},
    }
