"""Operator summary for the Airflow plugin page: champion model, last scoring run, last drift status.

Each section is computed independently and never raises: a missing champion, an empty warehouse or a
locked DuckDB file turns into ``{"available": False, "message": ...}`` so the page always renders.
No Airflow imports here; the plugin (``plugins/churn_ops.py``) only renders what this returns.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

from pipelines.config import Config
from pipelines.contract import DATASET_LEVEL_FEATURE

logger = logging.getLogger(__name__)

MAX_METRICS = 24
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _unavailable(message: str) -> dict[str, Any]:
    return {"available": False, "message": message}


def _warehouse_missing(config: Config) -> str | None:
    """A DuckDB warehouse file that does not exist yet (opening it would create an empty one)."""
    url = config.warehouse_url
    prefix = "duckdb:///"
    if url.startswith(prefix):
        path = url[len(prefix) :]
        if path != ":memory:" and not Path(path).exists():
            return f"The warehouse {path} does not exist yet: run `make demo` or `churn init-warehouse`."
    return None


def champion_summary(config: Config) -> dict[str, Any]:
    """The ``@champion`` version, its MLflow run and its logged metrics (test metrics first)."""
    try:
        from pipelines.registry import resolve_champion

        ref = resolve_champion(config)
    except Exception as exc:  # no champion yet, registry down, registry package missing
        logger.info("no champion: %s", exc)
        return _unavailable(
            f"No champion model yet ({type(exc).__name__}: {exc}). Run the churn_training DAG with "
            "registry.auto_promote, or promote a version with `churn promote`."
        )
    out: dict[str, Any] = {
        "available": True,
        "name": str(ref.name),
        "version": str(ref.version),
        "run_id": str(ref.run_id),
        "model_uri": str(getattr(ref, "model_uri", "") or ""),
        "metrics": {},
    }
    try:
        from pipelines import tracking

        run = tracking.get_run(tracking.client_for(config), ref.run_id)
        metrics = dict(run.data.metrics)
        test = {k: v for k, v in metrics.items() if k.startswith("test")}
        chosen = test or metrics
        out["metrics"] = {k: float(chosen[k]) for k in sorted(chosen)[:MAX_METRICS]}
        out["run_name"] = run.info.run_name
    except Exception as exc:
        out["metrics_message"] = f"metrics unavailable: {exc}"
    return out


def _newest_partition(config: Config, table: str, sql: str, *, no_table: str, no_rows: str):
    """``(score_date, rows of sql for it, None)`` for a table's newest score_date, or ``(None, None, unavailable)``.

    The page must render whatever state the warehouse is in, so every problem becomes a message, not a 500.
    """
    missing = _warehouse_missing(config)
    if missing:
        return None, None, _unavailable(missing)
    try:
        from pipelines.warehouse import open_warehouse

        with open_warehouse(config) as wh:
            if not wh.table_exists(table):
                return None, None, _unavailable(no_table)
            latest = wh.scalar(wh.render(f"SELECT MAX(score_date) FROM {{{table}}}"))
            if latest is None:
                return None, None, _unavailable(no_rows)
            return latest, wh.query_df(wh.render(sql), {"d": latest}), None
    except Exception as exc:
        return None, None, _unavailable(f"The warehouse could not be read ({type(exc).__name__}: {exc}).")


def last_scoring_summary(config: Config) -> dict[str, Any]:
    """The newest churn_scores partition: date, rows, model version, run id and risk-tier counts."""
    latest, frame, unavailable = _newest_partition(
        config,
        "churn_scores",
        "SELECT risk_tier, model_version, run_id, COUNT(*) AS n, MAX(scored_at) AS scored_at "
        "FROM {churn_scores} WHERE score_date = :d GROUP BY risk_tier, model_version, run_id",
        no_table="No churn_scores table yet: run `churn init-warehouse` and the churn_scoring DAG.",
        no_rows="No scores yet: run the churn_scoring DAG.",
    )
    if unavailable:
        return unavailable
    tiers: dict[str, int] = {}
    for tier, n in zip(frame["risk_tier"], frame["n"], strict=True):
        tiers[str(tier)] = tiers.get(str(tier), 0) + int(n)
    scored_at = frame["scored_at"].max() if len(frame) else None
    return {
        "available": True,
        "score_date": str(latest)[:10],
        "rows": int(frame["n"].sum()) if len(frame) else 0,
        "tiers": dict(sorted(tiers.items(), key=lambda kv: -kv[1])),
        "model_versions": sorted({str(v) for v in frame["model_version"]}),
        "run_ids": sorted({str(v) for v in frame["run_id"]}),
        "scored_at": str(scored_at) if scored_at is not None else None,
    }


def last_drift_summary(config: Config) -> dict[str, Any]:
    """The newest monitoring_drift partition: dataset-level metrics, drifted features, report path."""
    latest, frame, unavailable = _newest_partition(
        config,
        "monitoring_drift",
        "SELECT metric, feature, value, threshold, drifted, report_path, model_version "
        "FROM {monitoring_drift} WHERE score_date = :d ORDER BY metric, feature",
        no_table="No monitoring_drift table yet.",
        no_rows="No drift results yet: the churn_monitoring DAG runs after scoring.",
    )
    if unavailable:
        return unavailable
    is_dataset_level = frame["feature"].isna() | (frame["feature"] == DATASET_LEVEL_FEATURE)
    dataset_level = frame[is_dataset_level]
    per_feature = frame[~is_dataset_level & (frame["metric"] == "feature_drift")]
    reports = [p for p in frame["report_path"].dropna().unique().tolist() if p]
    score_date = str(latest)[:10]
    return {
        "available": True,
        "score_date": score_date,
        "model_version": str(frame["model_version"].iloc[0]) if len(frame) else None,
        "drifted": bool(frame["drifted"].fillna(False).astype(bool).any()) if len(frame) else False,
        "metrics": [
            {
                "metric": str(r.metric),
                "value": float(r.value),
                "threshold": None if r.threshold is None or r.threshold != r.threshold else float(r.threshold),
                "drifted": bool(r.drifted),
            }
            for r in dataset_level.itertuples()
        ],
        "drifted_features": sorted(
            {str(f) for f in per_feature[per_feature["drifted"].fillna(False).astype(bool)]["feature"]}
        ),
        "features_checked": int(per_feature["feature"].nunique()),
        "report_path": reports[0] if reports else None,
        "report_available": drift_report_path(config, score_date) is not None,
    }


def drift_report_path(config: Config, score_date: str) -> Path | None:
    """``<reports_dir>/drift/<score_date>.html`` if it exists; None for anything else (no path tricks)."""
    if not DATE_RE.match(score_date or ""):
        return None
    try:
        dt.date.fromisoformat(score_date)
    except ValueError:
        return None
    path = config.resolve_path(config.monitoring.reports_dir) / "drift" / f"{score_date}.html"
    return path if path.is_file() else None


def ops_summary(config: Config) -> dict[str, Any]:
    """Everything the operator page shows, as plain JSON-able values."""
    return {
        "model_name": config.registry.model_name,
        "champion": champion_summary(config),
        "scoring": last_scoring_summary(config),
        "drift": last_drift_summary(config),
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
