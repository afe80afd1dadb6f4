"""The drift monitor's reference rows, drawn from a training run's time splits (never the train rows)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from pipelines.config import Config
from pipelines.contract import CUTOFF_COLUMN
from pipelines.datasets.build import TrainingSets

logger = logging.getLogger(__name__)


def drift_reference_sample(config: Config, sets: TrainingSets) -> pd.DataFrame:
    """The drift reference rows: the most recent fully observed cutoffs, not the training rows.

    Up to ``monitoring.reference_sample_rows`` rows of the test split (the latest cutoff(s) whose label
    horizon ``as_of`` fully observes), topped up from the validation split (its latest cutoffs first)
    when the test split is smaller. Why not a sample of the train split: with the default dataset
    settings the train cutoffs lie 5 to 10 months before ``as_of`` (the test cutoff ``horizon_days``
    = 3 months), so the monitor compared the scoring population with one up to a year older and
    flagged what merely changes with time (customers age, seasons, the population's mix) as drift on
    sample data without any injected change. The test split
    is as close to the scoring date as labelled rows can be, and it is the split the model's reported
    test metrics come from, so "no drift from the reference" means "the population the metrics were
    measured on". The train split is only used when both later splits are empty.
    """
    train, validation, test = sets.train, sets.validation, sets.test
    n = config.monitoring.reference_sample_rows
    seed = config.training.seed
    parts: list[pd.DataFrame] = []
    for split in (test, validation):
        need = n - sum(len(p) for p in parts)
        if need <= 0 or split is None or not len(split):
            continue
        if len(split) <= need:
            parts.append(split)
        elif CUTOFF_COLUMN in split.columns:  # whole latest cutoffs first, a seeded sample of the boundary one
            shuffled = split.iloc[np.random.default_rng(seed).permutation(len(split))]
            parts.append(shuffled.sort_values(CUTOFF_COLUMN, ascending=False, kind="stable").head(need))
        else:
            parts.append(split.sample(n=need, random_state=seed))
    if not parts:
        logger.warning("validation and test splits are empty: the drift reference is sampled from the train split")
        parts = [train.sample(n=n, random_state=seed) if n < len(train) else train]
    sample = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    if len(sample) < n:
        logger.info(
            "drift reference: %d rows (test + validation splits) < monitoring.reference_sample_rows %d", len(sample), n
        )
    return sample
