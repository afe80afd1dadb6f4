"""Backtest: realized performance of past scores once their churn horizon has passed.

Scores made on day ``d`` predict "no completed order in ``[d, d + horizon_days)``" (UTC days; the
features used only data before ``d`` 00:00 UTC). They *mature* when ``d + horizon_days <= evaluated_on``.
Each monitoring run evaluates the matured score dates that no earlier run has evaluated yet (so a daily
run evaluates one date, and a run after an outage catches up), within ``monitoring.backtest_lookback_days``.
Labels are computed in SQL (one ``EXISTS`` per scored customer) and metrics in Python.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.contract import MONITORING_PERFORMANCE
from pipelines.dates import as_date
from pipelines.models.metrics import brier, expected_calibration_error, pr_auc, roc_auc

if TYPE_CHECKING:
    from pipelines.config import Config
    from pipelines.warehouse import Warehouse

logger = logging.getLogger(__name__)


_LABELS_SQL = """
SELECT s.customer_id, s.churn_probability, s.model_version,
       CASE WHEN EXISTS (
           SELECT 1 FROM {orders} o
           WHERE o.customer_id = s.customer_id AND o.status = 'completed'
             AND o.ordered_at >= :window_start AND o.ordered_at < :window_end
       ) THEN 0 ELSE 1 END AS churned
FROM {churn_scores} s
WHERE s.score_date = :score_date
"""


def performance_metrics(y_true: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """pr_auc, roc_auc (only when both classes occur), brier, calibration_error (ECE, 10 bins), churn_rate, n."""
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    out: dict[str, float] = {"n": float(len(y))}
    if len(y) == 0:
        return out
    out["churn_rate"] = float(y.mean())
    out["brier"] = brier(y, p)
    out["calibration_error"] = expected_calibration_error(y, p)
    if 0 < y.sum() < len(y):
        out["pr_auc"] = pr_auc(y, p)
        out["roc_auc"] = roc_auc(y, p)
    return out


def matured_score_dates(wh: Warehouse, config: Config, evaluated_on: dt.date) -> list[dt.date]:
    """Score dates whose horizon has passed by ``evaluated_on`` and that no earlier run evaluated."""
    horizon = config.churn.horizon_days
    latest = evaluated_on - dt.timedelta(days=horizon)
    earliest = latest - dt.timedelta(days=config.monitoring.backtest_lookback_days)
    sql = wh.render(
        "SELECT DISTINCT s.score_date FROM {churn_scores} s "
        "WHERE s.score_date <= :latest AND s.score_date >= :earliest "
        "AND NOT EXISTS (SELECT 1 FROM {monitoring_performance} m "
        "                WHERE m.score_date = s.score_date AND m.evaluated_on < :evaluated_on) "
        "ORDER BY s.score_date"
    )
    frame = wh.query_df(sql, {"latest": latest, "earliest": earliest, "evaluated_on": evaluated_on})
    return [as_date(v) for v in frame.iloc[:, 0].tolist()] if len(frame) else []


def backtest(wh: Warehouse, config: Config, evaluated_on: dt.date) -> list[dict[str, Any]]:
    """Evaluate matured score dates and replace the ``monitoring_performance`` partition ``evaluated_on``.

    Returns one dict per evaluated score date: ``{"score_date", "model_version", **metrics}``.
    """
    horizon = config.churn.horizon_days
    results: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    computed_at = dt.datetime.now(dt.UTC)
    for score_date in matured_score_dates(wh, config, evaluated_on):
        start = dt.datetime(score_date.year, score_date.month, score_date.day, tzinfo=dt.UTC)
        frame = wh.query_df(
            wh.render(_LABELS_SQL),
            {
                "score_date": score_date,
                "window_start": start,
                "window_end": start + dt.timedelta(days=horizon),
            },
        )
        if frame.empty:
            continue
        versions = frame["model_version"].astype(str).value_counts()
        model_version = str(versions.index[0])
        if len(versions) > 1:
            logger.warning(
                "score_date %s holds scores of several model versions %s; reporting %s",
                score_date,
                list(versions.index),
                model_version,
            )
        metrics = performance_metrics(frame["churned"].to_numpy(), frame["churn_probability"].to_numpy())
        logger.info(
            "backtest of scores from %s (model v%s, n=%d): %s",
            score_date,
            model_version,
            len(frame),
            ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k != "n"),
        )
        results.append({"score_date": score_date.isoformat(), "model_version": model_version, **metrics})
        rows.extend(
            {
                "score_date": score_date,
                "evaluated_on": evaluated_on,
                "model_version": model_version,
                "metric": name,
                "value": value,
                "computed_at": computed_at,
            }
            for name, value in metrics.items()
        )
    data = pd.DataFrame(rows, columns=MONITORING_PERFORMANCE.column_names)
    if data.empty:
        data = data.astype({"score_date": "object", "evaluated_on": "object", "value": "float64"})
    data["computed_at"] = pd.to_datetime(data["computed_at"], utc=True)
    wh.replace_partition(MONITORING_PERFORMANCE, data, "evaluated_on", evaluated_on)
    if not results:
        logger.info(
            "backtest: no matured, not yet evaluated score dates by %s (horizon %d days)", evaluated_on, horizon
        )
    return results


def latest_realized(wh: Warehouse, evaluated_by: dt.date, model_version: str) -> dict[str, Any] | None:
    """The most recent matured score date's metrics for ``model_version`` (evaluated on or before the date)."""
    sql = wh.render(
        "SELECT score_date, metric, value FROM {monitoring_performance} "
        "WHERE model_version = :version AND evaluated_on <= :evaluated_by AND score_date = ("
        "  SELECT MAX(score_date) FROM {monitoring_performance} "
        "  WHERE model_version = :version AND evaluated_on <= :evaluated_by)"
    )
    frame = wh.query_df(sql, {"version": str(model_version), "evaluated_by": evaluated_by})
    if frame.empty:
        return None
    out: dict[str, Any] = {"score_date": as_date(frame["score_date"].iloc[0]).isoformat()}
    out.update({str(m): float(v) for m, v in zip(frame["metric"], frame["value"], strict=True)})
    return out
