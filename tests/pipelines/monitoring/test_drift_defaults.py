"""The default monitoring settings tell generated data with injected drift from data without.

Same path as ``scripts/measure_drift_defaults.py`` (which chose the defaults): sample data with and
without ``drift_after``, the reference from the latest training cutoffs (``reference_sample``),
predictions of the LightGBM baseline candidate, the monitor's Evidently report and ``decide``. Smaller
than the measurement (fewer customers), so the margins are smaller too.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from scripts.measure_drift_defaults import DRIFT_AFTER, build_scenario, evaluate, generate

CUSTOMERS = 1500


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from pipelines.config import Config

    base = tmp_path_factory.mktemp("drift-defaults")
    out = {}
    for name, drift_after in (("no drift", None), ("drift", DRIFT_AFTER)):
        config = Config().with_overrides(
            {"warehouse": {"url": f"duckdb:///{base}/{name.replace(' ', '_')}.duckdb"}, "training": {"num_threads": 2}}
        )
        generate(config, CUSTOMERS, drift_after)
        out[name] = evaluate(build_scenario(name, config))
    return out


@pytest.mark.slow  # ~30 s: two generated warehouses, features at 10 dates, a LightGBM baseline
def test_default_decision_separates_drift_from_no_drift(results):
    for row in results["no drift"]:
        assert not row["retrain"], row
    for row in results["drift"]:
        assert row["retrain"], row
        assert {"support_contacts_90d"} <= set(row["drifted"]), row


@pytest.mark.slow
def test_excluded_features_are_not_monitored(results):
    from pipelines.config import Config

    excluded = set(Config().monitoring.drift_exclude_features)
    for rows in results.values():
        for row in rows:
            assert not excluded & set(row["per_feature"]), row
            assert row["n_features"] == len(row["per_feature"]) == 12


def test_reference_sample_takes_the_latest_cutoffs():
    """Test split first, topped up from validation (latest cutoff first), never from train."""
    from pipelines.config import Config
    from pipelines.registry.runs import reference_sample

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
    sample = reference_sample(config, train, validation, test)
    assert len(sample) == 60
    assert sample["cutoff_date"].value_counts().to_dict() == {dt.date(2025, 5, 1): 40, dt.date(2025, 4, 1): 20}

    small = reference_sample(
        config.with_overrides({"monitoring": {"reference_sample_rows": 25}}), train, validation, test
    )
    assert len(small) == 25 and set(small["cutoff_date"]) == {dt.date(2025, 5, 1)}
    # fewer test + validation rows than asked for: a smaller reference, no train rows
    big = reference_sample(
        config.with_overrides({"monitoring": {"reference_sample_rows": 500}}), train, validation, test
    )
    assert len(big) == 100 and big["cutoff_date"].min() == dt.date(2025, 3, 1)
