"""Daily monitoring of the written scores: drift against the training reference, backtest, retrain signal.

Inputs, and why they are fetched this way:

- **Reference**: ``reference/reference.parquet``, logged by the registry with each model version's run
  (feature rows of the latest fully observed cutoffs, i.e. the test split topped up from validation, +
  ``prediction``; see :func:`pipelines.registry.runs.reference_sample`). Downloaded with the MLflow
  client; tests may pass it in. Features in ``monitoring.drift_exclude_features`` (calendar trend and
  seasonality) are not compared.
- **Current**: the score date's features are *recomputed* with
  :func:`pipelines.features.iter_scoring_features` (streamed, a random sample of at most
  ``monitoring.current_sample_rows`` customers kept, numeric columns only) and joined with the
  ``churn_scores`` rows written for that date. No side file from the scoring job is needed, so
  monitoring can run on any worker, be rerun, or backfill a date.

Outputs: the Evidently HTML report at ``{monitoring.reports_dir}/drift/{score_date}.html`` (also an
artifact of an MLflow run tagged ``score_date``/``model_version`` in the registry experiment), the
``monitoring_drift`` partition of the score date, the ``monitoring_performance`` partition
``evaluated_on = score_date`` (backtest), and the retrain decision.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.contract import DATASET_LEVEL_FEATURE, MONITORING_DRIFT, ExitCode
from pipelines.dates import as_date
from pipelines.monitoring.drift import PREDICTION_COLUMN, DriftSummary, run_drift_report, summarize_snapshot
from pipelines.monitoring.performance import backtest, latest_realized

if TYPE_CHECKING:
    from pipelines.config import Config
    from pipelines.warehouse import Warehouse

logger = logging.getLogger(__name__)

REFERENCE_ARTIFACT = "reference/reference.parquet"
# monitoring_drift.feature for dataset-level rows. The contract documents NULL, but on Postgres the
# primary key (score_date, metric, feature) makes the column NOT NULL, so a marker is used instead.
DATASET_LEVEL = DATASET_LEVEL_FEATURE
SCORE_COLUMN = "churn_probability"
# A feature's missing share is flagged when it exceeds the reference's by more than this.
MISSING_SHARE_TOLERANCE = 0.1


class MonitoringError(RuntimeError):
    """Monitoring cannot run (no scores for the date, no reference ...)."""

    exit_code = ExitCode.MONITORING


def monitor_scores(
    config: Config,
    score_date: dt.date | str,
    model_version: str,
    *,
    reference: pd.DataFrame | None = None,
    log_to_mlflow: bool = True,
) -> dict[str, Any]:
    """Drift report + backtest for ``score_date``; returns the retrain decision.

    ``reference`` overrides the model version's logged reference sample (tests, ad-hoc analysis).
    Returns ``{"retrain", "reasons", "report_path", "drift_share", "prediction_drift", "drifted_features",
    "performance", "realized", "mlflow_run_id", ...}``.
    """
    from pipelines.features import numeric_feature_names
    from pipelines.warehouse import open_warehouse

    score_date = as_date(score_date)
    model_version = str(model_version)
    mon = config.monitoring
    started = time.perf_counter()
    if reference is None:
        reference = load_reference(config, model_version)

    with open_warehouse(config) as wh:
        scores = _scores_for(wh, score_date)
        if scores.empty:
            raise MonitoringError(
                f"churn_scores has no rows for score_date {score_date}; run `churn score --date {score_date}` first"
            )
        written_versions = sorted(scores["model_version"].astype(str).unique())
        if written_versions != [model_version]:
            logger.warning(
                "scores of %s were made by model version(s) %s, monitoring against the reference of v%s",
                score_date,
                written_versions,
                model_version,
            )

        features = _drift_features(
            numeric_feature_names(config), mon.drift_features, reference, exclude=mon.drift_exclude_features
        )
        # The report and the table cover every feature the reference has; the decision counts only `features`.
        reported = [n for n in numeric_feature_names(config) if n in reference.columns] or features
        current = current_sample(wh, config, score_date, scores, reported)
        reference = (
            reference.rename(columns={SCORE_COLUMN: PREDICTION_COLUMN})
            if PREDICTION_COLUMN not in reference.columns
            else reference
        )
        if PREDICTION_COLUMN not in reference.columns:
            raise MonitoringError(
                f"the reference sample of model version {model_version} has no "
                f"{PREDICTION_COLUMN!r} column (needed for prediction drift)"
            )

        report_path = config.resolve_path(mon.reports_dir) / "drift" / f"{score_date.isoformat()}.html"
        report_path.parent.mkdir(parents=True, exist_ok=True)
        snapshot = run_drift_report(
            reference,
            current,
            reported,
            config,
            metadata={"score_date": score_date.isoformat(), "model_version": model_version},
        )
        snapshot.save_html(str(report_path))
        full_summary = summarize_snapshot(snapshot.dict())
        summary = full_summary.restricted_to(features)
        logger.info(
            "drift report for %s: %d/%d features drifted (share %.2f), prediction drift %.3f -> %s",
            score_date,
            len(summary.drifted_features),
            len(summary.features),
            summary.drift_share or 0.0,
            summary.prediction.value if summary.prediction else float("nan"),
            report_path,
        )

        table_summary = replace(full_summary, drift_share=summary.drift_share, drifted_count=summary.drifted_count)
        drift_rows = drift_table(
            table_summary,
            reference,
            reported,
            score_date,
            model_version,
            config,
            str(report_path),
            reference_rows=len(reference),
            current_rows=len(current),
            scored_rows=len(scores),
        )
        wh.replace_partition(MONITORING_DRIFT, drift_rows, "score_date", score_date)

        performance = backtest(wh, config, score_date)
        realized = latest_realized(wh, score_date, model_version)

    retrain, reasons = decide(summary, realized, config)
    result: dict[str, Any] = {
        "retrain": retrain,
        "reasons": reasons,
        "report_path": str(report_path),
        "score_date": score_date.isoformat(),
        "model_version": model_version,
        "drift_share": summary.drift_share,
        "prediction_drift": summary.prediction.value if summary.prediction else None,
        "drifted_features": summary.drifted_features,
        "performance": performance,
        "realized": realized,
        "rows": {"reference": len(reference), "current_sample": len(current), "scored": len(scores)},
        "mlflow_run_id": None,
    }
    if log_to_mlflow:
        result["mlflow_run_id"] = log_monitoring_run(config, result, report_path)
    result["seconds"] = round(time.perf_counter() - started, 3)
    logger.info("monitoring %s: retrain=%s%s", score_date, retrain, "".join(f"\n  - {r}" for r in reasons))
    return result


# -- decision ----------------------------------------------------------------------------------------
def decide(summary: DriftSummary, realized: dict[str, Any] | None, config: Config) -> tuple[bool, list[str]]:
    """Retrain when feature drift share, prediction drift or realized PR-AUC cross their thresholds."""
    mon = config.monitoring
    reasons: list[str] = []
    share = summary.drift_share
    if share is not None and share >= mon.drift_share_threshold:
        names = summary.drifted_features
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        reasons.append(
            f"feature drift: {len(names)} of {len(summary.features)} numeric features drifted "
            f"(share {share:.2f} >= drift_share_threshold {mon.drift_share_threshold:.2f}): {shown}"
        )
    pred = summary.prediction
    if pred is not None and pred.value >= mon.prediction_drift_threshold:
        reasons.append(
            f"prediction drift: churn_probability distribution moved by {pred.value:.3f} (normed "
            f"Wasserstein) >= prediction_drift_threshold {mon.prediction_drift_threshold:.3f}"
        )
    if realized and realized.get("pr_auc") is not None and realized["pr_auc"] < mon.min_pr_auc:
        reasons.append(
            f"performance: realized PR-AUC {realized['pr_auc']:.3f} of the scores from "
            f"{realized['score_date']} (n={int(realized.get('n', 0))}) < min_pr_auc {mon.min_pr_auc:.3f}"
        )
    return bool(reasons), reasons


# -- inputs ------------------------------------------------------------------------------------------
def load_reference(config: Config, model_version: str) -> pd.DataFrame:
    """The reference sample logged with ``model_version``'s MLflow run (``reference/reference.parquet``)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)
    name = config.registry.model_name
    try:
        run_id = client.get_model_version(name, str(model_version)).run_id
    except MlflowException as exc:
        raise MonitoringError(
            f"model {name} version {model_version} is not registered at {config.tracking_uri}: {exc}"
        ) from exc
    with tempfile.TemporaryDirectory(prefix="churn-reference-") as tmp:
        try:
            path = client.download_artifacts(run_id, REFERENCE_ARTIFACT, tmp)
        except (MlflowException, OSError) as exc:
            raise MonitoringError(
                f"run {run_id} of {name} v{model_version} has no {REFERENCE_ARTIFACT} artifact "
                f"(the drift reference): {exc}"
            ) from exc
        frame = pd.read_parquet(path)
    logger.info("reference sample of %s v%s: %d rows from run %s", name, model_version, len(frame), run_id)
    return frame


def _scores_for(wh: Warehouse, score_date: dt.date) -> pd.DataFrame:
    sql = wh.render(
        "SELECT customer_id, churn_probability, model_version FROM {churn_scores} WHERE score_date = :score_date"
    )
    return wh.query_df(sql, {"score_date": score_date})


def _drift_features(
    names: list[str], selected: list[str] | None, reference: pd.DataFrame, exclude: list[str] | tuple[str, ...] = ()
) -> list[str]:
    """The monitored features: ``selected`` (monitoring.drift_features) as given, else every numeric
    feature except ``exclude`` (monitoring.drift_exclude_features; names not in ``names`` are ignored,
    the feature set depends on dataset.windows_days); only those the reference sample has."""
    if selected:
        unknown = [n for n in selected if n not in names]
        if unknown:
            raise MonitoringError(
                f"monitoring.drift_features lists {unknown}, which are not numeric features "
                f"(numeric_feature_names: {', '.join(names)})"
            )
        names = list(selected)
    else:
        names = [n for n in names if n not in set(exclude)]
    missing = [n for n in names if n not in reference.columns]
    if missing:
        logger.warning(
            "reference sample lacks feature(s) %s (trained with an older feature set?); not monitored", missing
        )
    features = [n for n in names if n in reference.columns]
    if not features:
        raise MonitoringError("no numeric feature of numeric_feature_names(config) is in the reference sample")
    return features


def current_sample(
    wh: Warehouse, config: Config, score_date: dt.date, scores: pd.DataFrame, features: list[str]
) -> pd.DataFrame:
    """Numeric features of a random sample of the scored customers, with ``prediction`` = their score.

    Streams the recomputed features (bounded memory); the sample is seeded by the date (reruns agree).
    """
    from pipelines.features import iter_scoring_features

    target = config.monitoring.current_sample_rows
    keep_fraction = min(1.0, target / max(len(scores), 1))
    rng = np.random.default_rng(score_date.toordinal())
    parts: list[pd.DataFrame] = []
    for chunk in iter_scoring_features(wh, config, score_date, config.scoring.chunk_rows):
        if chunk is None or len(chunk) == 0:
            continue
        cols = ["customer_id", *[f for f in features if f in chunk.columns]]
        part = chunk.loc[:, cols]
        if keep_fraction < 1.0:
            part = part[rng.random(len(part)) < keep_fraction]
        parts.append(part.copy())
        del chunk
    if not parts:
        raise MonitoringError(f"the feature stream for {score_date} is empty but churn_scores has {len(scores)} rows")
    current = pd.concat(parts, ignore_index=True)
    missing = [f for f in features if f not in current.columns]
    if missing:
        raise MonitoringError(f"the scoring features lack {missing} that numeric_feature_names(config) lists")
    merged = current.merge(scores[["customer_id", SCORE_COLUMN]], on="customer_id", how="inner")
    if merged.empty:
        raise MonitoringError(
            f"none of the {len(current)} recomputed feature rows of {score_date} match a written "
            "score (customer_id); were the scores written for another population?"
        )
    dropped = len(current) - len(merged)
    if dropped:
        logger.warning(
            "%d sampled feature rows of %s have no score (population changed since scoring?)", dropped, score_date
        )
    return merged.rename(columns={SCORE_COLUMN: PREDICTION_COLUMN})


# -- outputs -----------------------------------------------------------------------------------------
def drift_table(
    summary: DriftSummary,
    reference: pd.DataFrame,
    features: list[str],
    score_date: dt.date,
    model_version: str,
    config: Config,
    report_path: str,
    *,
    reference_rows: int,
    current_rows: int,
    scored_rows: int,
) -> pd.DataFrame:
    """``monitoring_drift`` rows: per feature drift and missing share, dataset-level drift share,
    prediction drift and row counts."""
    mon = config.monitoring
    rows: list[dict[str, Any]] = []

    def add(metric: str, feature: str, value: float | None, threshold: float | None, drifted: bool) -> None:
        if value is None or not np.isfinite(value):
            logger.warning("monitoring_drift: %s of %s has no finite value; not written", metric, feature)
            return
        rows.append(
            {
                "metric": metric,
                "feature": feature,
                "value": float(value),
                "threshold": None if threshold is None else float(threshold),
                "drifted": bool(drifted),
            }
        )

    for name in features:
        drift = summary.features.get(name)
        if drift is not None:
            add("feature_drift", name, drift.value, drift.threshold, drift.drifted)
        share = summary.missing_share.get(name)
        if share is not None:
            ref_share = float(reference[name].isna().mean()) if name in reference.columns else 0.0
            limit = min(1.0, ref_share + MISSING_SHARE_TOLERANCE)
            add("missing_share", name, share, limit, share > limit)
    add(
        "share_drifted_features",
        DATASET_LEVEL,
        summary.drift_share,
        mon.drift_share_threshold,
        summary.drift_share is not None and summary.drift_share >= mon.drift_share_threshold,
    )
    if summary.prediction is not None:
        add(
            "prediction_drift",
            SCORE_COLUMN,
            summary.prediction.value,
            mon.prediction_drift_threshold,
            summary.prediction.value >= mon.prediction_drift_threshold,
        )
    add("reference_rows", DATASET_LEVEL, reference_rows, None, False)
    add("current_rows", DATASET_LEVEL, current_rows, None, False)
    add("scored_rows", DATASET_LEVEL, scored_rows, None, False)

    frame = pd.DataFrame(rows, columns=["metric", "feature", "value", "threshold", "drifted"])
    frame["threshold"] = frame["threshold"].astype("float64")
    frame.insert(0, "score_date", score_date)
    frame.insert(1, "model_version", model_version)
    frame["report_path"] = report_path
    frame["computed_at"] = pd.Timestamp.now(tz="UTC")
    return frame


def log_monitoring_run(config: Config, result: dict[str, Any], report_path: Path) -> str | None:
    """An MLflow run in the registry experiment with the HTML report and the key numbers."""
    from mlflow.tracking import MlflowClient

    from pipelines.tracking import ensure_experiment

    try:
        client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)
        experiment_id = ensure_experiment(config, client)
        run = client.create_run(
            experiment_id,
            run_name=f"monitor-{result['score_date']}",
            tags={
                "score_date": result["score_date"],
                "model_version": result["model_version"],
                "run_type": "monitoring",
                "retrain": str(result["retrain"]).lower(),
            },
        )
        run_id = run.info.run_id
        metrics = {
            "drift_share": result["drift_share"],
            "prediction_drift": result["prediction_drift"],
            "n_drifted_features": len(result["drifted_features"]),
            "retrain": float(result["retrain"]),
        }
        if result.get("realized") and result["realized"].get("pr_auc") is not None:
            metrics["realized_pr_auc"] = result["realized"]["pr_auc"]
        for key, value in metrics.items():
            if value is not None and np.isfinite(value):
                client.log_metric(run_id, key, float(value))
        client.log_artifact(run_id, str(report_path), "drift")
        with tempfile.TemporaryDirectory() as tmp:
            summary_path = Path(tmp) / "monitoring_summary.json"
            summary_path.write_text(
                json.dumps({k: v for k, v in result.items() if k != "mlflow_run_id"}, indent=2, default=str)
            )
            client.log_artifact(run_id, str(summary_path), "drift")
        client.set_terminated(run_id)
        return run_id
    except Exception:  # the warehouse rows and the HTML are written; a tracking outage must not hide them
        logger.exception("could not log the monitoring run to MLflow at %s", config.tracking_uri)
        return None
