"""Measure the monitor's drift numbers and retrain decision on generated sample data, with and without drift.

Why this exists: the monitoring defaults (``feature_drift_threshold``, ``drift_share_threshold``,
``prediction_drift_threshold``, ``drift_exclude_features``) were chosen from these numbers. It runs the
monitor's own code path without MLflow or the transformer:

- data: :func:`pipelines.data.generator.generate_sample_data` (same seed with and without ``drift_after``);
- reference: the rows of the latest training cutoff (the test split, topped up from validation), as
  :func:`pipelines.datasets.drift_reference_sample` logs them; ``--old-reference`` samples the train split;
- current: the score date's features from :func:`pipelines.features.iter_scoring_features`;
- prediction: the production LightGBM baseline candidate (``train_baseline`` on the train split,
  isotonic/config calibration on validation, ``BaselinePredictor``); the same model scores reference and
  current (the monitor compares the logged reference predictions with the written scores);
- drift: :func:`pipelines.monitoring.drift.run_drift_report` + ``summarize_snapshot`` + ``decide``.

    .venv/bin/python -m scripts.measure_drift_defaults --customers 3000 --workdir /tmp/drift-measure
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
from pathlib import Path

import pandas as pd

from pipelines.config import Config

SEED = 42
START, END = dt.date(2023, 1, 1), dt.date(2025, 12, 31)
AS_OF = dt.date(2025, 10, 1)
SCORE_DATES = (dt.date(2025, 10, 1), dt.date(2025, 12, 1))
DRIFT_AFTER = dt.date(2025, 6, 1)


@dataclasses.dataclass
class Scenario:
    name: str
    config: Config
    reference: pd.DataFrame  # numeric features + prediction
    current: dict[dt.date, pd.DataFrame]  # score date -> numeric features + prediction
    predictor: object = None  # the baseline that made the predictions


def generate(
    config: Config,
    customers: int,
    drift_after: dt.date | None,
    seed: int = SEED,
    start: dt.date = START,
    end: dt.date = END,
) -> None:
    from pipelines.data.generator import generate_sample_data
    from pipelines.warehouse import open_warehouse

    with open_warehouse(config) as wh:
        wh.init_schema()
        generate_sample_data(wh, customers=customers, seed=seed, start=start, end=end, drift_after=drift_after)


def build_scenario(
    name: str, config: Config, as_of: dt.date = AS_OF, score_dates=SCORE_DATES, *, old_reference: bool = False
) -> Scenario:
    """Features at the training cutoffs, a baseline predictor, the reference sample and the scoring frames."""
    from pipelines.datasets import TrainingSets, drift_reference_sample
    from pipelines.datasets.build import choose_cutoffs
    from pipelines.features import build_features, iter_scoring_features, numeric_feature_names
    from pipelines.models.bundle import BaselinePredictor
    from pipelines.models.calibration import fit_calibrator
    from pipelines.training.baseline import train_baseline
    from pipelines.warehouse import open_warehouse

    names = numeric_feature_names(config)
    splits = choose_cutoffs(config, as_of)
    with open_warehouse(config) as wh:
        frame = build_features(wh, config, [c for cs in splits.values() for c in cs])
        current = {
            d: pd.concat(list(iter_scoring_features(wh, config, d, config.scoring.chunk_rows)), ignore_index=True)
            for d in score_dates
        }
    by_split = {s: frame[frame["cutoff_date"].isin(cs)].reset_index(drop=True) for s, cs in splits.items()}
    run = train_baseline(config, by_split["train"], by_split["validation"], names)
    calibrator = fit_calibrator(by_split["validation"]["churned"].to_numpy(), run.val_raw, config.training.calibration)
    predictor = BaselinePredictor(
        run.booster, names, calibrator, threshold=0.5, num_threads=config.training.num_threads or 2
    )
    if old_reference:
        train = by_split["train"]
        n = min(len(train), config.monitoring.reference_sample_rows)
        reference = train.sample(n=n, random_state=config.training.seed) if n < len(train) else train
    else:
        reference = drift_reference_sample(
            config, TrainingSets(by_split["train"], by_split["validation"], by_split["test"], manifest={})
        )
    reference = reference.reset_index(drop=True).assign(prediction=lambda f: predictor.predict_proba(f))
    current = {d: f.assign(prediction=predictor.predict_proba(f)) for d, f in current.items()}
    return Scenario(name, config, reference, current, predictor)


def evaluate(scenario: Scenario, config: Config | None = None) -> list[dict]:
    """One row per score date: drift share, prediction drift, decision (with ``config``'s monitoring settings);
    the monitor's own :func:`pipelines.monitoring.monitor.drift_verdict`."""
    from pipelines.monitoring.monitor import drift_verdict

    config = config or scenario.config
    rows = []
    for day, current in scenario.current.items():
        _, verdict = drift_verdict(
            scenario.reference,
            current,
            config,
            score_date=day.isoformat(),
            model_version="baseline",
            reference_label="training reference (test cutoff)",
            data_summary=False,
        )
        rows.append(
            {
                "scenario": scenario.name,
                "score_date": day.isoformat(),
                "n_features": len(verdict.monitored),
                "drift_share": verdict.drift_share,
                "prediction_drift": verdict.prediction_drift,
                "retrain": verdict.retrain,
                "drifted": verdict.drifted_features,
                "per_feature": {f.name: round(f.value, 4) for f in verdict.monitored if f.value is not None},
                "headline": verdict.headline,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--workdir", default="/tmp/drift-measure")
    parser.add_argument("--old-reference", action="store_true", help="sample the reference from the train split")
    parser.add_argument(
        "--old-defaults",
        action="store_true",
        help="the pre-change monitoring defaults (0.1 / 0.3 / 0.1, nothing excluded)",
    )
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--json", help="also write every number (per feature too) to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    base = Config().with_overrides({"training": {"num_threads": 2}})
    if args.old_defaults:
        base = base.with_overrides(
            {
                "monitoring": {
                    "feature_drift_threshold": 0.1,
                    "drift_share_threshold": 0.3,
                    "prediction_drift_threshold": 0.1,
                    "drift_exclude_features": [],
                }
            }
        )
    rows = []
    for name, drift_after in (("no drift", None), (f"drift_after={DRIFT_AFTER}", DRIFT_AFTER)):
        tag = "drift" if drift_after else "nodrift"
        db = work / f"{tag}-{args.customers}-{args.seed}.duckdb"
        config = base.with_overrides({"warehouse": {"url": f"duckdb:///{db}"}})
        if args.regenerate or not db.exists():
            generate(config, args.customers, drift_after, seed=args.seed)
        rows += evaluate(build_scenario(name, config, old_reference=args.old_reference))
    print(f"{'scenario':<26}{'score_date':<12}{'share drifted':>14}{'pred drift':>11}  decision")
    for r in rows:
        print(
            f"{r['scenario']:<26}{r['score_date']:<12}{r['drift_share']:>14.3f}{r['prediction_drift']:>11.3f}  "
            f"{'retrain' if r['retrain'] else 'ok'}  ({len(r['drifted'])}/{r['n_features']}: "
            f"{', '.join(r['drifted'])})"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
