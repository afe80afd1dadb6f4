"""Small glue the Airflow DAGs call between the heavy jobs; no Airflow imports here.

Why a module: the DAG files stay pure wiring (one call per task), and this logic -- which date a run
reads as of, whether monitoring asks for retraining, the Markdown run summary -- is unit-testable
without a scheduler.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines.config import Config
from pipelines.dates import as_date

logger = logging.getLogger(__name__)

RUN_SUMMARY_DIR = "runs"  # under monitoring.reports_dir


def resolve_as_of(
    conf: Mapping[str, Any] | None = None,
    data_interval_end: Any = None,
    logical_date: Any = None,
    run_after: Any = None,
) -> str:
    """The date a run reads data as of, as an ISO string.

    Order: an explicit ``conf["as_of"]`` (a manual or monitor-triggered run), the data interval end,
    the logical date, and last ``run_after`` (asset-triggered runs have no logical date). Never
    "latest": re-running or backfilling a date reads exactly what that date could see.
    """
    conf = conf or {}
    for candidate in (conf.get("as_of"), data_interval_end, logical_date, run_after):
        if candidate not in (None, ""):
            return as_date(candidate).isoformat()
    raise ValueError("cannot tell the run's as-of date: no conf['as_of'], data interval, logical date or run_after")


def should_retrain(result: Mapping[str, Any] | None) -> bool:
    """Whether a monitoring result asks for retraining."""
    return bool(result and result.get("retrain"))


def retrain_reason(result: Mapping[str, Any] | None) -> str:
    """One line saying why monitoring asked for retraining (goes into the triggered run's conf)."""
    reasons = list((result or {}).get("reasons") or [])
    return "; ".join(str(r) for r in reasons) or "monitoring requested retraining"


_SKIP = object()


def _scalar(value: Any) -> Any:
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        try:
            return _scalar(value.item())
        except (TypeError, ValueError):
            return _SKIP
    return _SKIP


def small_dict(values: Mapping[str, Any] | None, limit: int = 40, max_items: int = 20) -> dict[str, Any]:
    """What is safe and useful to pass via XCom: scalars, short lists of scalars and one-level dicts of
    scalars (e.g. tier counts, gate reasons), at most ``limit`` keys. Frames and arrays are dropped."""
    out: dict[str, Any] = {}
    for key, value in (values or {}).items():
        if len(out) >= limit:
            break
        if isinstance(value, Mapping):
            inner = {str(k): _scalar(v) for k, v in list(value.items())[:max_items]}
            kept: Any = {k: v for k, v in inner.items() if v is not _SKIP}
        elif isinstance(value, list | tuple):
            kept = [v for v in (_scalar(x) for x in value[:max_items]) if v is not _SKIP]
        else:
            kept = _scalar(value)
        if kept is not _SKIP:
            out[str(key)] = kept
    return out


def latest_scored_version(config: Config, score_date: str | dt.date) -> str | None:
    """The model version that wrote the churn_scores partition of ``score_date`` (None if none)."""
    from pipelines.warehouse import open_warehouse

    with open_warehouse(config) as wh:
        value = wh.scalar(
            wh.render("SELECT MAX(model_version) FROM {churn_scores} WHERE score_date = :score_date"),
            {"score_date": as_date(score_date)},
        )
    return None if value is None else str(value)


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
        lines += [
            "",
            f"Candidates (registered: **{candidates.get('chosen', '?')}**):",
            "",
            "| metric | transformer val | transformer test | baseline val | baseline test |",
            "|---|---|---|---|---|",
        ]
        for name, values in candidates["rows"].items():
            cells = " | ".join("-" if v is None else f"{v:.4f}" for v in values)
            lines.append(f"| {name} | {cells} |")
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
    """Both candidates' validation and test metrics from the MLflow run, side by side.

    Why in the summary: the platform never hides that the transformer lost (or won) against the baseline.
    An unreachable tracking server leaves the table out rather than failing the run.
    """
    try:
        from pipelines.tracking import client_for

        run = client_for(config).get_run(run_id)
    except Exception as exc:  # the summary is informative; the model is already registered
        logger.warning("could not read MLflow run %s for the candidate table: %s", run_id, exc)
        return {}
    metrics = run.data.metrics
    rows = {
        name: [
            metrics.get(f"{kind}_{split}_{name}") for kind in ("transformer", "baseline") for split in ("val", "test")
        ]
        for name in SUMMARY_METRICS
    }
    return {
        "chosen": run.data.tags.get("candidate_kind"),
        "notes": run.data.tags.get("notes"),
        "rows": {name: values for name, values in rows.items() if any(v is not None for v in values)},
    }
