"""Daily monitoring of the written scores: drift against the training reference, backtest, retrain signal.

Inputs, and why they are fetched this way:

- **Reference**: ``reference/reference.parquet``, logged by the registry with each model version's run
  (feature rows of the latest fully observed cutoffs, i.e. the test split topped up from validation, +
  ``prediction``; see :func:`pipelines.datasets.drift_reference_sample`). Downloaded with the MLflow
  client; tests may pass it in. Features in ``monitoring.drift_exclude_features`` (calendar trend and
  seasonality) are reported but never count toward retraining; tenure rates are derived on both sides, and
  the ratio features (``monitoring.ratio_features``) are compared as population rates.
- **Current**: the score date's features are *recomputed* with
  :func:`pipelines.features.iter_scoring_features` (streamed, a random sample of at most
  ``monitoring.current_sample_rows`` customers kept, numeric columns only) and joined with the
  ``churn_scores`` rows written for that date. No side file from the scoring job is needed, so
  monitoring can run on any worker, be rerun, or backfill a date.

Outputs: the Evidently HTML report at ``{monitoring.reports_dir}/drift/{score_date}.html`` (also an
artifact of an MLflow run tagged ``score_date``/``model_version`` in the registry experiment), the
``monitoring_drift`` partition of the score date, the ``monitoring_performance`` partition
``evaluated_on = score_date`` (backtest), and the retrain decision.

Why one file over 400 lines: the monitoring job reads its inputs, runs the report, decides and writes in one
pass; the pure parts live in ``drift``, ``verdict``, ``performance`` and ``decisions``.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.contract import DATASET_LEVEL_FEATURE, MONITORING_DRIFT, PROBABILITY_COLUMN, SQL_TYPES, ExitCode, Table
from pipelines.dates import as_date
from pipelines.monitoring.drift import (
    PREDICTION_COLUMN,
    RATE_METHOD,
    TENURE_SUFFIX,
    ColumnDrift,
    DriftSummary,
    add_tenure_rates,
    rate_change,
    run_drift_report,
    summarize_snapshot,
)
from pipelines.monitoring.performance import backtest, latest_realized
from pipelines.monitoring.verdict import DriftVerdict, make_verdict, report_header_html
from pipelines.validation.html import run_facts

if TYPE_CHECKING:
    from pipelines.config import Config
    from pipelines.warehouse import Warehouse

logger = logging.getLogger(__name__)

REFERENCE_ARTIFACT = "reference/reference.parquet"
# monitoring_drift.feature for dataset-level rows. The contract documents NULL, but on Postgres the
# primary key (score_date, metric, feature) makes the column NOT NULL, so a marker is used instead.
DATASET_LEVEL = DATASET_LEVEL_FEATURE
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
    reference_start: dt.date | str | None = None,
    reference_end: dt.date | str | None = None,
    log_to_mlflow: bool = True,
) -> dict[str, Any]:
    """Drift report + backtest for ``score_date``; returns the retrain decision.

    The reference is, in this order: ``reference`` (tests, ad-hoc analysis); the scored population of
    every score date in ``[reference_start, reference_end]`` (compare chosen periods, e.g. a month with
    the month before); else the model version's logged reference sample.
    Returns ``{"retrain", "reasons", "verdict" (DriftVerdict.to_dict(), what the plugin renders),
    "report_path", "drift_share", "prediction_drift", "drifted_features", "performance", "realized",
    "mlflow_run_id", ...}``; ``retrain``/``reasons``/``drift_share``/... are the verdict's own values.
    """
    from pipelines.features import numeric_feature_names
    from pipelines.warehouse import open_warehouse

    score_date = as_date(score_date)
    model_version = str(model_version)
    period = reference_period(reference_start, reference_end)
    mon = config.monitoring
    started = time.perf_counter()
    if reference is not None:
        label = "reference passed in"
    elif period is None:
        reference = load_reference(config, model_version)
        label = f"training reference logged with model v{model_version}"

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
        names = numeric_feature_names(config)
        if reference is None:
            reference, dates = period_reference(wh, config, period[0], period[1], names, exclude=score_date)
            label = (
                f"scores of {period[0]}..{period[1]} ({len(dates)} score date(s): "
                f"{', '.join(d.isoformat() for d in dates[:6])}{' ...' if len(dates) > 6 else ''})"
            )
        reference = (
            reference.rename(columns={PROBABILITY_COLUMN: PREDICTION_COLUMN})
            if PREDICTION_COLUMN not in reference.columns
            else reference
        )
        if PREDICTION_COLUMN not in reference.columns:
            raise MonitoringError(
                f"the reference sample ({label}) has no {PREDICTION_COLUMN!r} column (needed for prediction drift)"
            )
        raw = [n for n in names if n in reference.columns]
        if not raw:
            raise MonitoringError("no numeric feature of numeric_feature_names(config) is in the reference sample")
        current = current_sample(wh, config, score_date, scores, raw)

        performance = backtest(wh, config, score_date)
        realized = latest_realized(wh, score_date, model_version)

        report_path = config.resolve_path(mon.reports_dir) / "drift" / f"{score_date.isoformat()}.html"
        report_path.parent.mkdir(parents=True, exist_ok=True)
        snapshot, verdict = drift_verdict(
            reference,
            current,
            config,
            score_date=score_date.isoformat(),
            model_version=model_version,
            reference_label=label,
            realized=realized,
        )
        save_report(snapshot, report_path, verdict)
        logger.info(
            "drift %s (model v%s, vs %s): %s -> %s", score_date, model_version, label, verdict.headline, report_path
        )

        drift_rows = drift_table(
            verdict,
            reference,
            score_date,
            model_version,
            str(report_path),
            missing_share=_missing_shares(snapshot),
            reference_rows=len(reference),
            current_rows=len(current),
            scored_rows=len(scores),
        )
        ensure_columns(wh, MONITORING_DRIFT)
        wh.replace_partition(MONITORING_DRIFT, drift_rows, "score_date", score_date)

    result: dict[str, Any] = {
        "retrain": verdict.retrain,
        "reasons": list(verdict.reasons),
        "headline": verdict.headline,
        "verdict": verdict.to_dict(),
        "report_path": str(report_path),
        "score_date": score_date.isoformat(),
        "model_version": model_version,
        "reference": label,
        "drift_share": verdict.drift_share,
        "prediction_drift": verdict.prediction_drift,
        "drifted_features": verdict.drifted_features,
        "performance": performance,
        "realized": realized,
        "rows": {"reference": len(reference), "current_sample": len(current), "scored": len(scores)},
        "mlflow_run_id": None,
    }
    if log_to_mlflow:
        result["mlflow_run_id"] = log_monitoring_run(config, result, report_path)
    result["seconds"] = round(time.perf_counter() - started, 3)
    logger.info(
        "monitoring %s: retrain=%s (%s)%s",
        score_date,
        verdict.retrain,
        verdict.headline,
        "".join(f"\n  - {r}" for r in verdict.reasons),
    )
    return result


# -- decision ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DriftPlan:
    """Which features the report shows, which count toward retraining, and why the others do not."""

    monitored: list[str]
    excluded: dict[str, str]  # name -> why
    ratios: dict[str, list[str]] = field(default_factory=dict)  # ratio feature -> [numerator, denominator]

    @property
    def reported(self) -> list[str]:
        return [*self.monitored, *sorted(self.excluded)]

    @property
    def columns(self) -> list[str]:
        """The reported features that are columns (what Evidently compares; ratios are compared as rates)."""
        return [n for n in self.reported if n not in self.ratios]


def drift_plan(names: list[str], config: Config, available: Sequence[str]) -> DriftPlan:
    """The monitored features (``monitoring.drift_features``, else every numeric feature, tenure rate and
    ratio feature not in ``drift_exclude_features``) and the excluded ones with their reason; only
    ``available`` ones (a ratio feature: when both its inputs are)."""
    mon = config.monitoring
    rates = [f"{n}{TENURE_SUFFIX}" for n in mon.tenure_normalised_features if n in names and "tenure_days" in names]
    ratios: dict[str, list[str]] = {}
    for ratio, inputs in mon.ratio_features.items():
        if ratio in names:
            raise MonitoringError(f"monitoring.ratio_features.{ratio}: the name is already a numeric feature")
        lacking = [n for n in inputs if n not in names]
        if lacking:  # like the tenure rates: a feature set without the inputs has no such ratio
            logger.warning("monitoring.ratio_features.%s: %s are not numeric features; not monitored", ratio, lacking)
        else:
            ratios[ratio] = list(inputs)
    candidates = [*names, *rates, *ratios]
    if mon.drift_features:
        unknown = [n for n in mon.drift_features if n not in candidates]
        if unknown:
            raise MonitoringError(
                f"monitoring.drift_features lists {unknown}, which are not numeric features or tenure rates "
                f"(choose from: {', '.join(candidates)})"
            )
        monitored = list(mon.drift_features)
        excluded = {n: "not in monitoring.drift_features" for n in candidates if n not in set(monitored)}
    else:
        exclude = mon.drift_exclude_features
        monitored = [n for n in candidates if n not in exclude]
        excluded = {n: exclude[n] for n in candidates if n in exclude}
    have = set(available) | {r for r, inputs in ratios.items() if set(inputs) <= set(available)}
    missing = [n for n in monitored if n not in have]
    if missing:
        logger.warning(
            "reference sample lacks feature(s) %s (trained with an older feature set?); not monitored", missing
        )
    monitored = [n for n in monitored if n in have]
    if not monitored:
        raise MonitoringError("no monitored feature (numeric_feature_names(config)) is in the reference sample")
    reported = {*monitored, *(n for n in excluded if n in have)}
    return DriftPlan(
        monitored,
        {n: why for n, why in excluded.items() if n in have},
        {r: inputs for r, inputs in ratios.items() if r in reported},
    )


def drift_verdict(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: Config,
    *,
    score_date: str,
    model_version: str,
    reference_label: str,
    realized: dict[str, Any] | None = None,
    data_summary: bool = True,
) -> tuple[Any, DriftVerdict]:
    """Evidently report over every reported feature + the one verdict (pure: no warehouse, no MLflow).

    ``reference`` and ``current`` hold the raw numeric features and ``prediction``; the tenure rates are
    derived here, on both sides alike, and the ratio features compared as rates (:func:`ratio_drift`). The monitor, the benchmark and the measurement script all call this
    (the last two with ``data_summary=False``: the decision does not use the data-quality part).
    """
    from pipelines.features import numeric_feature_names

    rated = config.monitoring.tenure_normalised_features
    reference = add_tenure_rates(reference, rated)
    current = add_tenure_rates(current, rated)
    plan = drift_plan(numeric_feature_names(config), config, [c for c in reference.columns if c in current.columns])
    snapshot = run_drift_report(
        reference,
        current,
        plan.columns,
        config,
        metadata={"score_date": score_date, "model_version": model_version, "reference": reference_label},
        data_summary=data_summary,
    )
    summary = summarize_snapshot(snapshot.dict())
    notes = ratio_drift(summary, reference, current, plan.ratios, config)
    verdict = make_verdict(
        summary,
        realized,
        config,
        monitored=plan.monitored,
        excluded=plan.excluded,
        notes=notes,
        score_date=score_date,
        model_version=model_version,
        reference=reference_label,
    )
    return snapshot, verdict


def ratio_drift(
    summary: DriftSummary,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    ratios: dict[str, list[str]],
    config: Config,
) -> dict[str, str]:
    """Add each ratio feature's :func:`~pipelines.monitoring.drift.rate_change` to ``summary.features``
    (drifted: change >= ``ratio_drift_threshold`` and |z| >= ``ratio_min_z``); returns name -> note."""
    mon = config.monitoring
    notes = {}
    for name, (numerator, denominator) in ratios.items():
        change = rate_change(reference, current, numerator, denominator)
        notes[name] = change.note
        if change.value is None:
            logger.warning("ratio feature %s has no value (%s): no %s on one side", name, change.note, denominator)
            continue
        summary.features[name] = ColumnDrift(
            name,
            change.value,
            mon.ratio_drift_threshold,
            RATE_METHOD,
            change.drifted(mon.ratio_drift_threshold, mon.ratio_min_z),
        )
    return notes


def decide(summary: DriftSummary, realized: dict[str, Any] | None, config: Config) -> tuple[bool, list[str]]:
    """Retrain decision over every feature of ``summary`` (all monitored); see :func:`make_verdict`."""
    verdict = make_verdict(
        summary,
        realized,
        config,
        monitored=list(summary.features),
        excluded={},
        score_date="",
        model_version="",
        reference="",
    )
    return verdict.retrain, list(verdict.reasons)


def reference_period(start: dt.date | str | None, end: dt.date | str | None) -> tuple[dt.date, dt.date] | None:
    """``(start, end)`` of a chosen reference period, None when neither is given (pure; the DAG conf and
    the CLI both use it). Both or neither; start <= end."""
    if start in (None, "") and end in (None, ""):
        return None
    if start in (None, "") or end in (None, ""):
        raise MonitoringError(
            "reference_start and reference_end go together (YYYY-MM-DD each); got "
            f"reference_start={start!r}, reference_end={end!r}"
        )
    try:
        first, last = as_date(start), as_date(end)
    except (TypeError, ValueError) as exc:
        raise MonitoringError(f"reference_start/reference_end must be dates YYYY-MM-DD: {exc}") from exc
    if first > last:
        raise MonitoringError(f"reference_start {first} is after reference_end {last}")
    return first, last


# -- inputs ------------------------------------------------------------------------------------------
def load_reference(config: Config, model_version: str) -> pd.DataFrame:
    """The reference sample logged with ``model_version``'s MLflow run (``reference/reference.parquet``)."""
    from mlflow.exceptions import MlflowException

    from pipelines import tracking

    client = tracking.client_for(config)
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


def period_reference(
    wh: Warehouse,
    config: Config,
    start: dt.date,
    end: dt.date,
    features: list[str],
    *,
    exclude: dt.date | None = None,
) -> tuple[pd.DataFrame, list[dt.date]]:
    """The scored population of every score date in ``[start, end]`` (features recomputed for each date,
    ``prediction`` = the written score), ``monitoring.reference_sample_rows`` in all, split evenly over
    the dates; ``exclude`` (the monitored date) is left out. Why: compare chosen periods (a month with
    the month before) instead of the model's training reference."""
    sql = wh.render(
        "SELECT DISTINCT score_date FROM {churn_scores} WHERE score_date BETWEEN :start AND :end ORDER BY score_date"
    )
    dates = [as_date(str(d)[:10]) for d in wh.query_df(sql, {"start": start, "end": end})["score_date"]]
    dates = [d for d in dates if d != exclude]
    if not dates:
        raise MonitoringError(
            f"churn_scores has no score date between reference_start {start} and reference_end {end}"
            + (f" (other than {exclude})" if exclude else "")
            + "; score those dates first or choose another period"
        )
    per_date = max(1, config.monitoring.reference_sample_rows // len(dates))
    frames = [current_sample(wh, config, day, _scores_for(wh, day), features, target_rows=per_date) for day in dates]
    frame = pd.concat(frames, ignore_index=True)
    logger.info("reference period %s..%s: %d rows from %d score date(s)", start, end, len(frame), len(dates))
    return frame, dates


def current_sample(
    wh: Warehouse,
    config: Config,
    score_date: dt.date,
    scores: pd.DataFrame,
    features: list[str],
    *,
    target_rows: int | None = None,
) -> pd.DataFrame:
    """Numeric features of a random sample of the scored customers, with ``prediction`` = their score.

    Streams the recomputed features (bounded memory); the sample is seeded by the date (reruns agree).
    ``target_rows`` defaults to ``monitoring.current_sample_rows``.
    """
    from pipelines.features import iter_scoring_features

    target = target_rows or config.monitoring.current_sample_rows
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
    merged = current.merge(scores[["customer_id", PROBABILITY_COLUMN]], on="customer_id", how="inner")
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
    return merged.rename(columns={PROBABILITY_COLUMN: PREDICTION_COLUMN})


# -- outputs -----------------------------------------------------------------------------------------
def drift_table(
    verdict: DriftVerdict,
    reference: pd.DataFrame,
    score_date: dt.date,
    model_version: str,
    report_path: str,
    *,
    missing_share: dict[str, float],
    reference_rows: int,
    current_rows: int,
    scored_rows: int,
) -> pd.DataFrame:
    """``monitoring_drift`` rows: the verdict's own rows (:meth:`DriftVerdict.table_rows`), each
    feature's missing share (role of its feature) and the row counts."""
    rows = verdict.table_rows()
    roles = {f.name: f.role for f in verdict.features}
    for name, role in roles.items():
        share = missing_share.get(name)
        if share is None or not np.isfinite(share):
            continue
        ref_share = float(reference[name].isna().mean()) if name in reference.columns else 0.0
        limit = min(1.0, ref_share + MISSING_SHARE_TOLERANCE)
        rows.append(
            {
                "metric": "missing_share",
                "feature": name,
                "value": float(share),
                "threshold": limit,
                "drifted": share > limit,
                "role": role,
                "note": None,
            }
        )
    for metric, value in (
        ("reference_rows", reference_rows),
        ("current_rows", current_rows),
        ("scored_rows", scored_rows),
    ):
        rows.append(
            {
                "metric": metric,
                "feature": DATASET_LEVEL,
                "value": float(value),
                "threshold": None,
                "drifted": False,
                "role": None,
                "note": None,
            }
        )
    columns = ["metric", "feature", "value", "threshold", "drifted", "role", "note"]
    frame = pd.DataFrame(rows, columns=columns)
    bad = frame["value"].isna()
    if bad.any():
        logger.warning(
            "monitoring_drift: %s have no finite value; not written",
            list(frame.loc[bad, "metric"] + ":" + frame.loc[bad, "feature"]),
        )
        frame = frame[~bad]
    frame["threshold"] = frame["threshold"].astype("float64")
    frame.insert(0, "score_date", score_date)
    frame.insert(1, "model_version", model_version)
    frame["report_path"] = report_path
    frame["computed_at"] = pd.Timestamp.now(tz="UTC")
    return frame.reset_index(drop=True)


def _missing_shares(snapshot: Any) -> dict[str, float]:
    return summarize_snapshot(snapshot.dict()).missing_share


def ensure_columns(wh: Warehouse, table: Table) -> None:
    """Add the nullable columns a warehouse created before them lacks (``role``/``note`` of monitoring_drift)."""
    from pipelines.warehouse.base import quote_identifier

    existing = set(wh.query_df(f"SELECT * FROM {wh.qualified(table.name)} LIMIT 0").columns)
    for column in table.columns:
        if column.name not in existing and column.nullable:
            wh.execute(
                f"ALTER TABLE {wh.qualified(table.name)} ADD COLUMN IF NOT EXISTS "
                f"{quote_identifier(column.name)} {SQL_TYPES[column.type]}"
            )
            logger.info("added column %s.%s (warehouse created before it)", table.name, column.name)


def save_report(snapshot: Any, path: Path, verdict: DriftVerdict) -> None:
    """The Evidently HTML with the verdict as its title and header (Evidently's own HTML has none)."""
    snapshot.save_html(str(path))
    text = path.read_text(encoding="utf-8")
    title = html.escape(f"Churn drift {verdict.score_date}, model v{verdict.model_version}: {verdict.headline}")
    header = report_header_html(verdict)
    if facts := run_facts():  # the Airflow DAG run that wrote it (absent from the CLI)
        line = " &middot; ".join(f"{html.escape(k)} {html.escape(v)}" for k, v in facts.items())
        header += f"<p style='font-family:sans-serif;margin:4px 20px;color:#555'>{line}</p>"
    text = text.replace("<head>", f"<head>\n<title>{title}</title>", 1).replace("<body>", f"<body>\n{header}", 1)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def log_monitoring_run(config: Config, result: dict[str, Any], report_path: Path) -> str | None:
    """An MLflow run in the registry experiment with the HTML report and the key numbers."""
    from pipelines.tracking import client_for, ensure_experiment

    try:
        client = client_for(config)
        experiment_id = ensure_experiment(config, client)
        run = client.create_run(
            experiment_id,
            run_name=f"monitor-{result['score_date']}",
            tags={
                "score_date": result["score_date"],
                "model_version": result["model_version"],
                "run_type": "monitoring",
                "retrain": str(result["retrain"]).lower(),
                "drift_verdict": str(result.get("headline", ""))[:4000],
                "reference": str(result.get("reference", ""))[:500],
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
