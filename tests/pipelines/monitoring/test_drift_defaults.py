"""The default monitoring settings tell generated data with injected drift from data without.

Same path as ``scripts/measure_drift_defaults.py`` (which chose the defaults): sample data with and
without ``drift_after``, the reference from the latest training cutoffs (``reference_sample``),
predictions of the LightGBM baseline candidate, the monitor's Evidently report and ``decide``; and the
month before the change against the first month after it, as ``--reference-start/--reference-end`` does.
Smaller than the measurement (fewer customers), so the margins are smaller too.
"""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.monitoring.monitor import drift_verdict
from scripts.measure_drift_defaults import DRIFT_AFTER, SCORE_DATES, build_scenario, evaluate, generate

CUSTOMERS = 1500
# The month before the change against the first month after it (its 30-day windows lie wholly after it).
MONTHS = (DRIFT_AFTER, DRIFT_AFTER + dt.timedelta(days=30))


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
        scenario = build_scenario(name, config, score_dates=(*SCORE_DATES, *MONTHS))
        months = {day: scenario.current.pop(day) for day in MONTHS}
        out[name] = evaluate(scenario)
        _, out[f"{name} month over month"] = drift_verdict(
            months[MONTHS[0]],
            months[MONTHS[1]],
            config,
            score_date=MONTHS[1].isoformat(),
            model_version="baseline",
            reference_label=f"scores of {MONTHS[0]}",
            data_summary=False,
        )
    return out


@pytest.mark.slow  # ~30 s: two generated warehouses, features at 10 dates, a LightGBM baseline
def test_default_decision_separates_drift_from_no_drift(results):
    for row in results["no drift"]:
        assert not row["retrain"], row
    for row in results["drift"]:
        assert row["retrain"], row
        assert {"support_contacts_90d"} <= set(row["drifted"]), row


@pytest.mark.slow
def test_the_first_month_after_the_change_is_caught_month_over_month(results):
    ratio = "support_contacts_per_session_30d"
    calm, changed = results["no drift month over month"], results["drift month over month"]
    assert not calm.retrain, calm.headline
    assert changed.retrain and ratio in changed.drifted_features, changed.headline
    # what detects it is the rate, in full after one month; the 90-day count has a fraction of the change
    by_name = {f.name: f for f in changed.monitored}
    assert by_name[ratio].value > 0.35 and by_name["support_contacts_90d"].value < 0.4


@pytest.mark.slow
def test_excluded_features_are_not_monitored(results):
    from pipelines.config import Config

    excluded = set(Config().monitoring.drift_exclude_features)
    for rows in results.values():
        if not isinstance(rows, list):
            continue  # the month-over-month verdicts
        for row in rows:
            assert not excluded & set(row["per_feature"]), row
            assert row["n_features"] == len(row["per_feature"])
            assert "support_contacts_per_session_30d" in row["per_feature"]  # the support rate is monitored
