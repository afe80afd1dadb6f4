"""Stage drift: the monitor's false alarms on data without drift and its detection of injected drift.

Two generated warehouses, same seed: one without drift, one with ``drift_after`` = DRIFT_AFTER (prices
rise, deliveries worsen, support contacts and cart abandonment grow, lifetimes shrink). In each, a LightGBM
baseline trained at AS_OF, before the change (the production candidate's path in
``scripts/measure_drift_defaults.py``), scores the whole population at 13 consecutive month starts
SCORE_DATES; each month is then compared with

- ``monthly``: the month before, as ``churn monitor --reference-start/--reference-end`` does (12 comparisons);
- ``training_reference``: the reference sample the registry logs (the test cutoff's rows), the default.

Every comparison is one call of :func:`pipelines.monitoring.monitor.drift_verdict` (the monitor's own
decision). Reported: retrains on the no-drift data (target 0 of 12), and on the drift data whether the
first comparison after the change retrains (target: yes) and that none before it does. ``info.sweep``
recomputes the decision for other thresholds from the stored distances, which is how the defaults in
configs/default.yaml were picked.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from benchmarks.common import Context, StageResult

logger = logging.getLogger("benchmarks.drift")

AS_OF = dt.date(2024, 11, 1)  # 8 cutoffs every 30 days need 365 days of history before the first one
SCORE_DATES = tuple(dt.date(2024 + (10 + i) // 12, (10 + i) % 12 + 1, 1) for i in range(13))  # 2024-11 .. 2025-11
DRIFT_AFTER = dt.date(2025, 5, 1)
FEATURE_THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.37, 0.4, 0.45, 0.5)
PREDICTION_THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35)


def _comparisons(scenario, config, mode: str) -> list[dict]:
    from pipelines.monitoring.monitor import drift_verdict

    rows = []
    dates = list(scenario.current)
    for i, day in enumerate(dates):
        if mode == "monthly":
            if i == 0:
                continue
            reference, label = scenario.current[dates[i - 1]], f"scores of {dates[i - 1]}"
        else:
            reference, label = scenario.reference, "training reference"
        start = time.perf_counter()
        _, v = drift_verdict(
            reference,
            scenario.current[day],
            config,
            score_date=day.isoformat(),
            model_version="baseline",
            reference_label=label,
            data_summary=False,  # the decision does not read the data-quality part (3/4 of the time)
        )
        rows.append(
            {
                "score_date": day.isoformat(),
                "reference": label,
                "retrain": v.retrain,
                "drift_share": v.drift_share,
                "drifted": v.drifted_features,
                "prediction_drift": round(v.prediction_drift, 4) if v.prediction_drift is not None else None,
                "monitored": {f.name: round(f.value, 4) for f in v.monitored if f.value is not None},
                "excluded_max": max((f.value for f in v.excluded if f.value is not None), default=None),
                "headline": v.headline,
                "seconds": round(time.perf_counter() - start, 2),
            }
        )
        logger.info("  %s %s %s: %s", scenario.name, mode, day, v.headline)
    return rows


def _decide(row: dict, feature_threshold: float, prediction_threshold: float, share_threshold: float) -> bool:
    values = row["monitored"].values()
    share = sum(v >= feature_threshold for v in values) / max(len(row["monitored"]), 1)
    return share >= share_threshold or (row["prediction_drift"] or 0.0) >= prediction_threshold


def _score(no_drift: list[dict], drift: list[dict], ft: float, pt: float, st: float) -> dict:
    false_alarms = sum(_decide(r, ft, pt, st) for r in no_drift)
    after = [r for r in drift if dt.date.fromisoformat(r["score_date"]) > DRIFT_AFTER]
    before = [r for r in drift if dt.date.fromisoformat(r["score_date"]) <= DRIFT_AFTER]
    flagged = [i for i, r in enumerate(after) if _decide(r, ft, pt, st)]
    return {
        "feature_threshold": ft,
        "prediction_threshold": pt,
        "false_alarms": false_alarms,
        "false_alarms_before_change": sum(_decide(r, ft, pt, st) for r in before),
        "detected_first_after_change": bool(after) and 0 in flagged,
        "delay": flagged[0] + 1 if flagged else None,
    }


def _numeric(frame):
    return frame.select_dtypes("number")


def _save(scenario, cache) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    for day, frame in scenario.current.items():
        _numeric(frame).to_parquet(cache / f"{day.isoformat()}.parquet", index=False)
    _numeric(scenario.reference).to_parquet(cache / "reference.parquet", index=False)


def _load(cache, name, config):
    import pandas as pd

    from scripts.measure_drift_defaults import Scenario

    current = {d: pd.read_parquet(cache / f"{d.isoformat()}.parquet") for d in SCORE_DATES}
    logger.info("reusing the features and predictions in %s", cache)
    return Scenario(name, config, pd.read_parquet(cache / "reference.parquet"), current)


def run(ctx: Context) -> StageResult:
    from scripts.measure_drift_defaults import build_scenario, generate

    result = StageResult("drift", repeat=1)
    base = ctx.config(training={"num_threads": 2})
    mon = base.monitoring
    scenarios = {}
    for name, drift_after in (("no_drift", None), ("drift", DRIFT_AFTER)):
        db = ctx.work_dir / f"drift-{name}-{ctx.scale}.duckdb"
        cache = ctx.work_dir / f"drift-{name}-{ctx.scale}-frames"
        config = base.with_overrides({"warehouse": {"url": f"duckdb:///{db}"}})
        if not db.exists():
            start = time.perf_counter()
            generate(config, ctx.customers, drift_after)
            logger.info("generated %s in %.1f s", db, time.perf_counter() - start)
        if (cache / "reference.parquet").exists():  # features + predictions of an earlier run of this stage
            scenarios[name] = _load(cache, name, config)
            continue
        start = time.perf_counter()
        scenarios[name] = build_scenario(name, config, as_of=AS_OF, score_dates=SCORE_DATES)
        logger.info("features + baseline for %s in %.1f s", name, time.perf_counter() - start)
        _save(scenarios[name], cache)
    rows = {
        (name, mode): _comparisons(scenarios[name], base, mode)
        for name in scenarios
        for mode in ("monthly", "training_reference")
    }
    seconds = [r["seconds"] for rs in rows.values() for r in rs]
    for mode in ("monthly", "training_reference"):
        no_drift, drift = rows[("no_drift", mode)], rows[("drift", mode)]
        here = _score(
            no_drift, drift, mon.feature_drift_threshold, mon.prediction_drift_threshold, mon.drift_share_threshold
        )
        n = len(no_drift)
        result.add(
            f"{mode}_false_alarms",
            float(here["false_alarms"]),
            "retrains",
            f"retrain decisions in {n} comparisons ({mode}) on data without drift (defaults)",
        )
        result.add(
            f"{mode}_detected_first_after_change",
            float(here["detected_first_after_change"]),
            "bool",
            f"1 when the first comparison after drift_after={DRIFT_AFTER} ({mode}) retrains",
        )
        result.add(
            f"{mode}_false_alarms_before_change",
            float(here["false_alarms_before_change"]),
            "retrains",
            f"retrains on the drift data before {DRIFT_AFTER} ({mode})",
        )
        result.info[f"sweep_{mode}"] = [
            _score(no_drift, drift, ft, pt, mon.drift_share_threshold)
            for ft in FEATURE_THRESHOLDS
            for pt in PREDICTION_THRESHOLDS
        ]
    result.add("seconds_per_comparison", seconds, "s", "drift_verdict (Evidently report over 31 columns + verdict)")
    result.info.update(
        {
            "customers": ctx.customers,
            "as_of": AS_OF.isoformat(),
            "score_dates": [d.isoformat() for d in SCORE_DATES],
            "drift_after": DRIFT_AFTER.isoformat(),
            "defaults": {
                "feature_drift_method": mon.feature_drift_method,
                "feature_drift_threshold": mon.feature_drift_threshold,
                "prediction_drift_threshold": mon.prediction_drift_threshold,
                "drift_share_threshold": mon.drift_share_threshold,
            },
            "comparisons": {f"{name}/{mode}": rs for (name, mode), rs in rows.items()},
        }
    )
    return result
