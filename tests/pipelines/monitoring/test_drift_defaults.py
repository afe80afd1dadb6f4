"""The default monitoring settings tell generated data with injected drift from data without.

Same path as ``scripts/measure_drift_defaults.py`` (which chose the defaults): sample data with and
without ``drift_after``, the reference from the latest training cutoffs (``reference_sample``),
predictions of the LightGBM baseline candidate, the monitor's Evidently report and ``decide``. Smaller
than the measurement (fewer customers), so the margins are smaller too.
"""

from __future__ import annotations

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
