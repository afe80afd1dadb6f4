"""The drift reference comes from the latest labelled cutoffs, never from the train rows."""

from __future__ import annotations

import datetime as dt

import pandas as pd


def test_reference_sample_takes_the_latest_cutoffs():
    """Test split first, topped up from validation (latest cutoff first), never from train."""
    from pipelines.config import Config
    from pipelines.datasets import TrainingSets, drift_reference_sample

    def split(cutoffs, rows):
        return pd.DataFrame(
            {
                "customer_id": range(rows * len(cutoffs)),
                "cutoff_date": [dt.date.fromisoformat(c) for c in cutoffs for _ in range(rows)],
            }
        )

    train = split(["2025-01-01", "2025-02-01"], 100)
    validation = split(["2025-03-01", "2025-04-01"], 30)
    test = split(["2025-05-01"], 40)
    config = Config().with_overrides({"monitoring": {"reference_sample_rows": 60}})
    sets = TrainingSets(train, validation, test, manifest={})
    sample = drift_reference_sample(config, sets)
    assert len(sample) == 60
    assert sample["cutoff_date"].value_counts().to_dict() == {dt.date(2025, 5, 1): 40, dt.date(2025, 4, 1): 20}

    small = drift_reference_sample(config.with_overrides({"monitoring": {"reference_sample_rows": 25}}), sets)
    assert len(small) == 25 and set(small["cutoff_date"]) == {dt.date(2025, 5, 1)}
    # fewer test + validation rows than asked for: a smaller reference, no train rows
    big = drift_reference_sample(config.with_overrides({"monitoring": {"reference_sample_rows": 500}}), sets)
    assert len(big) == 100 and big["cutoff_date"].min() == dt.date(2025, 3, 1)
