"""What the operator page shows over time, read from the warehouse: tier counts per scoring day, the newest
day's score distribution, drift per monitoring day and realised performance as labels matured.

One warehouse connection for all sections; each section fails on its own into ``{"available": False,
"message": ...}`` so the page renders whatever state the warehouse is in.
"""

from __future__ import annotations

import logging
from typing import Any

from pipelines.config import Config

logger = logging.getLogger(__name__)

HISTOGRAM_BINS = 20
PERFORMANCE_METRICS = ("pr_auc", "roc_auc", "brier")


def tier_order(config: Config) -> list[str]:
    """Tier names from the lowest probability bound up (low, medium, high), not alphabetical or by count."""
    return [name for name, _ in sorted(config.scoring.risk_tiers.items(), key=lambda kv: kv[1])]


def _day(value: Any) -> str:
    return str(value)[:10]


def _section(name: str, fn, *args) -> dict[str, Any]:
    try:
        return fn(*args)
    except Exception as exc:  # one broken section never hides the others
        logger.warning("ops page: %s unavailable: %s", name, exc)
        return {"available": False, "message": f"{name} could not be read ({type(exc).__name__}: {exc})."}


def _tiers(wh, config: Config, days: int) -> dict[str, Any]:
    if not wh.table_exists("churn_scores"):
        return {"available": False, "message": "No churn_scores table yet."}
    frame = wh.query_df(
        wh.render(
            "SELECT score_date, risk_tier, COUNT(*) AS n FROM {churn_scores} "
            "WHERE score_date IN (SELECT DISTINCT score_date FROM {churn_scores} ORDER BY score_date DESC LIMIT :k) "
            "GROUP BY score_date, risk_tier ORDER BY score_date"
        ),
        {"k": days},
    )
    if frame.empty:
        return {"available": False, "message": "No scores yet: run the churn_scoring DAG."}
    dates = sorted({_day(d) for d in frame["score_date"]})
    order = tier_order(config)
    extra = sorted({str(t) for t in frame["risk_tier"]} - set(order))
    counts = {tier: [0] * len(dates) for tier in order + extra}
    for row in frame.itertuples():
        counts[str(row.risk_tier)][dates.index(_day(row.score_date))] = int(row.n)
    return {"available": True, "dates": dates, "tiers": counts}


def _distribution(wh, config: Config) -> dict[str, Any]:
    if not wh.table_exists("churn_scores"):
        return {"available": False, "message": "No churn_scores table yet."}
    latest = wh.scalar(wh.render("SELECT MAX(score_date) FROM {churn_scores}"))
    if latest is None:
        return {"available": False, "message": "No scores yet."}
    # binned in SQL: the page never pulls a day's scores (millions of rows) into the API server
    frame = wh.query_df(
        wh.render(
            "SELECT LEAST(CAST(FLOOR(churn_probability * :b) AS INTEGER), :b - 1) AS bin, COUNT(*) AS n "
            "FROM {churn_scores} WHERE score_date = :d GROUP BY 1 ORDER BY 1"
        ),
        {"b": HISTOGRAM_BINS, "d": latest},
    )
    counts = [0] * HISTOGRAM_BINS
    for row in frame.itertuples():
        counts[max(0, min(HISTOGRAM_BINS - 1, int(row.bin)))] += int(row.n)
    bounds = sorted(config.scoring.risk_tiers.values())
    return {
        "available": True,
        "score_date": _day(latest),
        "bins": HISTOGRAM_BINS,
        "counts": counts,
        "tier_bounds": bounds,
    }


def _drift(wh, days: int) -> dict[str, Any]:
    if not wh.table_exists("monitoring_drift"):
        return {"available": False, "message": "No monitoring_drift table yet."}
    frame = wh.query_df(
        wh.render(
            "SELECT score_date, metric, value, threshold, drifted FROM {monitoring_drift} "
            "WHERE metric IN ('share_drifted_features', 'prediction_drift', 'retrain') AND score_date IN "
            "(SELECT DISTINCT score_date FROM {monitoring_drift} ORDER BY score_date DESC LIMIT :k) "
            "ORDER BY score_date, metric"
        ),
        {"k": days},
    )
    if frame.empty:
        return {"available": False, "message": "No drift results yet: the churn_monitoring DAG runs after scoring."}
    series: dict[str, dict[str, list]] = {}
    retrain_days = []
    for row in frame.itertuples():
        if row.metric == "retrain":  # the decision of the day, marked on the chart
            if row.drifted:
                retrain_days.append(_day(row.score_date))
            continue
        value = None if row.value is None or row.value != row.value else float(row.value)
        threshold = None if row.threshold is None or row.threshold != row.threshold else float(row.threshold)
        s = series.setdefault(str(row.metric), {"dates": [], "values": [], "thresholds": [], "drifted": []})
        s["dates"].append(_day(row.score_date))
        s["values"].append(value)
        s["thresholds"].append(threshold)
        s["drifted"].append(bool(row.drifted) if row.drifted is not None else False)
    if not series:
        return {"available": False, "message": "No drift metrics yet."}
    return {"available": True, "series": series, "retrain_days": retrain_days}


def _performance(wh) -> dict[str, Any]:
    if not wh.table_exists("monitoring_performance"):
        return {"available": False, "message": "No monitoring_performance table yet."}
    frame = wh.query_df(
        wh.render(
            "SELECT score_date, metric, value, evaluated_on FROM {monitoring_performance} "
            "WHERE metric IN ('pr_auc', 'roc_auc', 'brier', 'n') ORDER BY score_date, evaluated_on"
        )
    )
    if frame.empty:
        return {
            "available": False,
            "message": "No realised performance yet: labels mature one churn horizon after each scoring day.",
        }
    latest = frame.sort_values("evaluated_on").groupby(["score_date", "metric"], as_index=False).last()
    dates = sorted({_day(d) for d in latest["score_date"]})
    metrics: dict[str, list] = {m: [None] * len(dates) for m in (*PERFORMANCE_METRICS, "n")}
    for row in latest.itertuples():
        if str(row.metric) in metrics and row.value == row.value:
            metrics[str(row.metric)][dates.index(_day(row.score_date))] = float(row.value)
    return {"available": True, "dates": dates, "metrics": metrics}


def ops_history(config: Config, *, days: int = 90) -> dict[str, Any]:
    """Tier counts, score distribution, drift and realised performance over the last ``days`` scoring days."""
    from pipelines.ops.status import _warehouse_missing

    missing = _warehouse_missing(config)
    names = ("tiers", "distribution", "drift", "performance")
    if missing:
        return {name: {"available": False, "message": missing} for name in names}
    try:
        from pipelines.warehouse import open_warehouse

        with open_warehouse(config) as wh:
            return {
                "tiers": _section("tier counts", _tiers, wh, config, days),
                "distribution": _section("score distribution", _distribution, wh, config),
                "drift": _section("drift history", _drift, wh, days),
                "performance": _section("realised performance", _performance, wh),
            }
    except Exception as exc:
        message = f"The warehouse could not be read ({type(exc).__name__}: {exc})."
        return {name: {"available": False, "message": message} for name in names}
