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
first comparison after the change retrains (target: yes) and that none before it does. ``info.sweep_*``
recomputes the decision for other thresholds from the stored distances (``sweep_ratio_*``: the ratio
features' ``ratio_drift_threshold``; ``margin_*``: their largest change without drift vs the first change
after it), which is how the defaults in configs/default.yaml were picked. ``--drift-seeds 42,7`` repeats it
on other generated shops (same settings, other customers); detection counts only when every shop detects.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time

from benchmarks.common import Context, StageResult
from scripts.measure_drift_defaults import SEED

logger = logging.getLogger("benchmarks.drift")

AS_OF = dt.date(2024, 11, 1)  # 8 cutoffs every 30 days need 365 days of history before the first one
SCORE_DATES = tuple(dt.date(2024 + (10 + i) // 12, (10 + i) % 12 + 1, 1) for i in range(13))  # 2024-11 .. 2025-11
DRIFT_AFTER = dt.date(2025, 5, 1)
FEATURE_THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.37, 0.4, 0.45, 0.5)
PREDICTION_THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35)
RATIO_THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)


def _comparisons(scenario, config, mode: str) -> list[dict]:
    from pipelines.monitoring.drift import rate_change
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
        ratios = {}
        for name, (numerator, denominator) in config.monitoring.ratio_features.items():
            change = rate_change(reference, scenario.current[day], numerator, denominator)
            ratios[name] = {
                "value": change.value,
                "z": change.z,
                "reference_rate": change.reference_rate,
                "current_rate": change.current_rate,
            }
        rows.append(
            {
                "score_date": day.isoformat(),
                "reference": label,
                "retrain": v.retrain,
                "drift_share": v.drift_share,
                "drifted": v.drifted_features,
                "prediction_drift": round(v.prediction_drift, 4) if v.prediction_drift is not None else None,
                "monitored": {f.name: round(f.value, 4) for f in v.monitored if f.value is not None},
                "ratios": ratios,
                "excluded_max": max((f.value for f in v.excluded if f.value is not None), default=None),
                "headline": v.headline,
                "seconds": round(time.perf_counter() - start, 2),
            }
        )
        logger.info("  %s %s %s: %s", scenario.name, mode, day, v.headline)
    return rows


@dataclasses.dataclass(frozen=True)
class Thresholds:
    feature: float  # feature_drift_threshold (Evidently columns)
    prediction: float  # prediction_drift_threshold
    share: float  # drift_share_threshold
    ratio: float  # ratio_drift_threshold (ratio features, as rates)
    ratio_z: float  # ratio_min_z

    @classmethod
    def of(cls, mon, **changes) -> Thresholds:
        return cls(
            feature=changes.get("feature", mon.feature_drift_threshold),
            prediction=changes.get("prediction", mon.prediction_drift_threshold),
            share=mon.drift_share_threshold,
            ratio=changes.get("ratio", mon.ratio_drift_threshold),
            ratio_z=mon.ratio_min_z,
        )


def _decide(row: dict, t: Thresholds) -> bool:
    """The monitor's decision recomputed from the stored distances for other thresholds."""
    ratios = row.get("ratios") or {}
    drifted = 0
    for name, value in row["monitored"].items():
        if name in ratios:
            z = ratios[name]["z"] or 0.0
            drifted += value >= t.ratio and abs(z) >= t.ratio_z
        else:
            drifted += value >= t.feature
    share = drifted / max(len(row["monitored"]), 1)
    return share >= t.share or (row["prediction_drift"] or 0.0) >= t.prediction


def _score(no_drift: list[dict], drift: list[dict], t: Thresholds) -> dict:
    false_alarms = sum(_decide(r, t) for r in no_drift)
    after = [r for r in drift if dt.date.fromisoformat(r["score_date"]) > DRIFT_AFTER]
    before = [r for r in drift if dt.date.fromisoformat(r["score_date"]) <= DRIFT_AFTER]
    flagged = [i for i, r in enumerate(after) if _decide(r, t)]
    return {
        "feature_threshold": t.feature,
        "prediction_threshold": t.prediction,
        "ratio_threshold": t.ratio,
        "false_alarms": false_alarms,
        "false_alarms_before_change": sum(_decide(r, t) for r in before),
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


def _score_seeds(rows: dict, mode: str, seeds: list[int], t: Thresholds) -> dict:
    """:func:`_score` over every seed: false alarms summed, detected only when detected in every seed."""
    per_seed = [_score(rows[(seed, "no_drift", mode)], rows[(seed, "drift", mode)], t) for seed in seeds]
    delays = [s["delay"] for s in per_seed]
    keep = ("feature_threshold", "prediction_threshold", "ratio_threshold")
    return {
        **{k: per_seed[0][k] for k in keep},
        "false_alarms": sum(s["false_alarms"] for s in per_seed),
        "false_alarms_before_change": sum(s["false_alarms_before_change"] for s in per_seed),
        "detected_first_after_change": all(s["detected_first_after_change"] for s in per_seed),
        "delay": None if None in delays else max(delays),
        "per_seed": {
            str(seed): {k: v for k, v in s.items() if k not in keep} for seed, s in zip(seeds, per_seed, strict=True)
        },
    }


def _margin(rows: dict, mode: str, seed: int, name: str) -> dict:
    """A ratio feature's largest change without drift (and before the change) vs its first change after."""

    def value(r):
        return (r.get("ratios") or {}).get(name, {}).get("value") or 0.0

    drift = rows[(seed, "drift", mode)]
    after = [r for r in drift if dt.date.fromisoformat(r["score_date"]) > DRIFT_AFTER]
    before = [r for r in drift if dt.date.fromisoformat(r["score_date"]) <= DRIFT_AFTER]
    return {
        "max_without_drift": round(max(map(value, rows[(seed, "no_drift", mode)])), 4),
        "max_before_change": round(max(map(value, before)), 4),
        "first_after_change": round(value(after[0]), 4) if after else None,
        "first_after_change_z": (after[0]["ratios"].get(name) or {}).get("z") if after else None,
    }


def _scenario(ctx: Context, base, seed: int, name: str, drift_after):
    from scripts.measure_drift_defaults import build_scenario, generate

    tag = f"{name}-{ctx.scale}" + ("" if seed == SEED else f"-seed{seed}")
    db, cache = ctx.work_dir / f"drift-{tag}.duckdb", ctx.work_dir / f"drift-{tag}-frames"
    config = base.with_overrides({"warehouse": {"url": f"duckdb:///{db}"}})
    if not db.exists():
        start = time.perf_counter()
        generate(config, ctx.customers, drift_after, seed=seed)
        logger.info("generated %s in %.1f s", db, time.perf_counter() - start)
    if (cache / "reference.parquet").exists():  # features + predictions of an earlier run of this stage
        return _load(cache, name, config)
    start = time.perf_counter()
    scenario = build_scenario(name, config, as_of=AS_OF, score_dates=SCORE_DATES)
    logger.info("features + baseline for %s (seed %d) in %.1f s", name, seed, time.perf_counter() - start)
    _save(scenario, cache)
    return scenario


def run(ctx: Context) -> StageResult:
    result = StageResult("drift", repeat=1)
    base = ctx.config(training={"num_threads": 2})
    mon = base.monitoring
    seeds = list(ctx.shared.get("drift_seeds") or (SEED,))
    modes = ("monthly", "training_reference")
    rows = {}
    for seed in seeds:
        for name, drift_after in (("no_drift", None), ("drift", DRIFT_AFTER)):
            scenario = _scenario(ctx, base, seed, name, drift_after)
            for mode in modes:
                rows[(seed, name, mode)] = _comparisons(scenario, base, mode)
    seconds = [r["seconds"] for rs in rows.values() for r in rs]
    defaults = Thresholds.of(mon)
    shops = f"{len(seeds)} generated shop(s): seed {', '.join(map(str, seeds))}"
    for mode in modes:
        here = _score_seeds(rows, mode, seeds, defaults)
        n = sum(len(rows[(seed, "no_drift", mode)]) for seed in seeds)
        result.add(
            f"{mode}_false_alarms",
            float(here["false_alarms"]),
            "retrains",
            f"retrain decisions in {n} comparisons ({mode}, {shops}) on data without drift (defaults)",
        )
        result.add(
            f"{mode}_detected_first_after_change",
            float(here["detected_first_after_change"]),
            "bool",
            f"1 when the first comparison after drift_after={DRIFT_AFTER} ({mode}) retrains, in every shop",
        )
        result.add(
            f"{mode}_false_alarms_before_change",
            float(here["false_alarms_before_change"]),
            "retrains",
            f"retrains on the drift data before {DRIFT_AFTER} ({mode}, every shop)",
        )
        result.info[f"sweep_{mode}"] = [
            _score_seeds(rows, mode, seeds, Thresholds.of(mon, feature=ft, prediction=pt))
            for ft in FEATURE_THRESHOLDS
            for pt in PREDICTION_THRESHOLDS
        ]
        result.info[f"sweep_ratio_{mode}"] = [
            _score_seeds(rows, mode, seeds, Thresholds.of(mon, ratio=rt)) for rt in RATIO_THRESHOLDS
        ]
        result.info[f"margin_{mode}"] = {
            name: {str(seed): _margin(rows, mode, seed, name) for seed in seeds} for name in mon.ratio_features
        }
    result.add("seconds_per_comparison", seconds, "s", "drift_verdict (Evidently report over 31 columns + verdict)")
    result.info.update(
        {
            "customers": ctx.customers,
            "seeds": seeds,
            "as_of": AS_OF.isoformat(),
            "score_dates": [d.isoformat() for d in SCORE_DATES],
            "drift_after": DRIFT_AFTER.isoformat(),
            "defaults": {
                "feature_drift_method": mon.feature_drift_method,
                "feature_drift_threshold": mon.feature_drift_threshold,
                "prediction_drift_threshold": mon.prediction_drift_threshold,
                "drift_share_threshold": mon.drift_share_threshold,
                "ratio_features": dict(mon.ratio_features),
                "ratio_drift_threshold": mon.ratio_drift_threshold,
                "ratio_min_z": mon.ratio_min_z,
            },
            "comparisons": {f"seed{seed}/{name}/{mode}": rs for (seed, name, mode), rs in rows.items()},
        }
    )
    return result
