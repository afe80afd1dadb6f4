"""One drift verdict: excluded features never retrain, the table reads back the same verdict, distances
stay bounded on a near-constant reference, the reference-period option."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.config import Config
from pipelines.monitoring import DriftVerdict, MonitoringError, make_verdict, monitor_scores, reference_period
from pipelines.monitoring.drift import (
    ColumnDrift,
    DriftSummary,
    add_tenure_rates,
    guarded_wasserstein,
    rate_change,
    run_drift_report,
    summarize_snapshot,
)
from pipelines.monitoring.monitor import drift_plan
from pipelines.scoring import score_customers
from pipelines.warehouse import open_warehouse

W = "wasserstein_guarded"


def _summary(values: dict[str, float], prediction: float, threshold: float = 0.37) -> DriftSummary:
    return DriftSummary(
        features={n: ColumnDrift(n, v, threshold, W, v >= threshold) for n, v in values.items()},
        prediction=ColumnDrift("prediction", prediction, 0.25, W, prediction >= 0.25),
    )


def _verdict(summary, config=None, realized=None, excluded=None):
    config = config or Config()
    excluded = excluded if excluded is not None else {"tenure_days": "grows with calendar time"}
    return make_verdict(
        summary,
        realized,
        config,
        monitored=[n for n in summary.features if n not in excluded],
        excluded=excluded,
        score_date="2025-03-01",
        model_version="7",
        reference="training reference logged with model v7",
    )


def test_excluded_features_never_trigger_retraining():
    # the excluded feature moved enormously; the monitored ones and the scores did not
    v = _verdict(_summary({"tenure_days": 3.9, "cancellation_rate_365d": 0.05, "return_rate_365d": 0.1}, 0.02))
    assert v.retrain is False and v.reasons == ()
    assert v.drifted_features == [] and v.excluded_drifted == ["tenure_days"]
    assert v.drift_share == 0.0
    assert [(f.name, f.reason) for f in v.excluded] == [("tenure_days", "grows with calendar time")]
    assert v.headline.startswith("no retrain: 0/2 monitored features drifted (share 0.00 < 0.05)")
    assert "1 excluded features reported only (1 moved: tenure_days)" in v.headline
    rows = pd.DataFrame(v.table_rows())
    retrain_row = rows[rows["metric"] == "retrain"].iloc[0]
    assert retrain_row["value"] == 0.0 and not retrain_row["drifted"] and retrain_row["note"] == v.headline
    tenure = rows[(rows["metric"] == "feature_drift") & (rows["feature"] == "tenure_days")].iloc[0]
    assert tenure["role"] == "excluded" and tenure["drifted"] and tenure["note"] == "grows with calendar time"

    # a monitored feature crossing its threshold does retrain, and only it is named
    v = _verdict(_summary({"tenure_days": 3.9, "cancellation_rate_365d": 0.5, "return_rate_365d": 0.1}, 0.3))
    assert v.retrain is True and v.drifted_features == ["cancellation_rate_365d"]
    assert v.reasons[0].startswith("feature drift: 1 of 2 monitored features drifted (share 0.50")
    assert "tenure_days" not in v.reasons[0]
    assert v.reasons[1].startswith("prediction drift: churn_probability distribution moved by 0.300")
    assert v.headline.startswith("RETRAIN: 1/2 monitored features drifted")


def test_table_rows_read_back_as_the_same_verdict():
    realized = {"pr_auc": 0.2, "score_date": "2024-12-01", "n": 321}
    v = _verdict(_summary({"tenure_days": 0.9, "a": 0.5, "b": 0.1}, 0.1), realized=realized)
    assert v.retrain and len(v.reasons) == 2 and "n=321" in v.reasons[1]
    frame = pd.DataFrame(v.table_rows()).assign(score_date="2025-03-01", model_version="7")
    back = DriftVerdict.from_rows(frame)
    assert back.to_dict() == v.to_dict()
    assert back.headline == v.headline
    with pytest.raises(ValueError, match="no 'retrain' row"):
        DriftVerdict.from_rows(frame[frame["metric"] != "retrain"])


def test_near_constant_reference_gives_a_bounded_distance():
    rng = np.random.default_rng(3)
    n = 600
    reference = pd.DataFrame(
        {
            "rate": np.r_[np.zeros(n - 4), np.full(4, 0.01)],  # std ~0.0004: Evidently divides by 0.001
            "normal": rng.normal(10, 2, n),
            "prediction": rng.beta(2, 5, n),
        }
    )
    current = reference.assign(rate=rng.random(n) * 0.2, normal=rng.normal(10.4, 2, n))
    from scipy import stats

    evidently_style = stats.wasserstein_distance(reference["rate"], current["rate"]) / max(
        reference["rate"].std(), 1e-3
    )
    assert evidently_style > 50  # what the issue saw (157-406)
    snapshot = run_drift_report(reference, current, ["rate", "normal"], Config())
    summary = summarize_snapshot(snapshot.dict())
    assert summary.features["rate"].method == W
    assert 0 < summary.features["rate"].value <= 4.0 and summary.features["rate"].drifted
    # an ordinary column: exactly Evidently's normed Wasserstein
    expected = stats.wasserstein_distance(reference["normal"], current["normal"]) / reference["normal"].std(ddof=0)
    assert summary.features["normal"].value == pytest.approx(expected, rel=1e-6)
    assert guarded_wasserstein(np.zeros(10), np.zeros(10)) == 0.0
    assert guarded_wasserstein(np.zeros(100), np.ones(100)) == pytest.approx(4.0)  # the bound, not 1000


def test_tenure_rates_remove_the_growth_of_a_young_shop():
    rng = np.random.default_rng(0)
    n = 3000

    def cohort(max_tenure: float) -> pd.DataFrame:
        tenure = rng.uniform(1, max_tenure, n)
        return pd.DataFrame({"tenure_days": tenure, "orders_365d": rng.poisson(np.minimum(tenure, 365) / 30)})

    young, older = add_tenure_rates(cohort(150), ["orders_365d"]), add_tenure_rates(cohort(180), ["orders_365d"])
    raw = guarded_wasserstein(young["orders_365d"], older["orders_365d"])
    rate = guarded_wasserstein(young["orders_365d_per_tenure_month"], older["orders_365d_per_tenure_month"])
    assert raw > 0.15 and rate < raw / 3

    plan = drift_plan(
        ["tenure_days", "orders_365d", "cancellation_rate_365d"],
        Config(),
        ["tenure_days", "orders_365d", "cancellation_rate_365d", "orders_365d_per_tenure_month"],
    )
    assert plan.monitored == ["cancellation_rate_365d", "orders_365d_per_tenure_month"]
    assert "monitored as orders_365d_per_tenure_month" in plan.excluded["orders_365d"]
    assert set(plan.excluded) == {"tenure_days", "orders_365d"}


def _month(rng, n: int, volume: float, support_rate: float) -> pd.DataFrame:
    sessions = rng.poisson(2 * volume, n)
    return pd.DataFrame(
        {
            "sessions_30d": sessions,
            "support_contacts_30d": rng.binomial(sessions, support_rate),
            "cancellation_rate_365d": rng.beta(1, 20, n),
            "prediction": rng.beta(2, 5, n),
        }
    )


def test_a_rate_ignores_volume_and_sees_a_support_incident_that_per_customer_distributions_blur():
    rng = np.random.default_rng(5)
    n = 3000
    october, december, incident = (_month(rng, n, *a) for a in ((1, 0.06), (1.3, 0.06), (1, 0.1)))
    threshold, min_z = Config().monitoring.ratio_drift_threshold, Config().monitoring.ratio_min_z

    def change(current):
        return rate_change(october, current, "support_contacts_30d", "sessions_30d")

    busy, worse = change(december), change(incident)
    assert worse.reference_rate == pytest.approx(october["support_contacts_30d"].sum() / october["sessions_30d"].sum())
    assert worse.value == pytest.approx(
        max(worse.current_rate / worse.reference_rate, worse.reference_rate / worse.current_rate) - 1
    )
    assert not busy.drifted(threshold, min_z) and busy.value < threshold / 2  # 30% more sessions, same support rate
    assert worse.drifted(threshold, min_z) and worse.z > min_z  # support rate 0.06 -> 0.10
    # the per-customer distribution of the same ratio moves far less (what the monitor compared before)
    per_customer = guarded_wasserstein(
        october["support_contacts_30d"] / october["sessions_30d"].where(october["sessions_30d"] > 0),
        incident["support_contacts_30d"] / incident["sessions_30d"].where(incident["sessions_30d"] > 0),
    )
    assert per_customer < worse.value / 2
    # a small shop: the same +67% is not significant, so not drift; nothing to compare is no value
    small = rate_change(october.head(40), incident.head(40), "support_contacts_30d", "sessions_30d")
    assert abs(small.z) < min_z and not small.drifted(threshold, min_z)
    none = rate_change(october, october.assign(sessions_30d=0), "support_contacts_30d", "sessions_30d")
    assert none.value is None and not none.drifted(threshold, min_z) and none.current_rate is None


def test_ratio_features_decide_as_rates_and_are_written_with_their_rates():
    rng = np.random.default_rng(9)
    reference, current = _month(rng, 3000, 1, 0.06), _month(rng, 3000, 1, 0.1)
    names = ["sessions_30d", "support_contacts_30d", "cancellation_rate_365d"]
    ratio = "support_contacts_per_session_30d"
    config = Config().with_overrides({"monitoring": {"drift_features": ["cancellation_rate_365d", ratio]}})
    plan = drift_plan(names, config, [*names, "prediction"])
    assert plan.monitored == ["cancellation_rate_365d", ratio] and plan.ratios == {
        ratio: ["support_contacts_30d", "sessions_30d"]
    }
    assert ratio not in plan.columns  # not an Evidently column
    assert (
        ratio
        not in drift_plan(
            ["cancellation_rate_365d"], config.with_overrides({"monitoring": {"drift_features": None}}), names
        ).reported
    )

    from pipelines.monitoring.monitor import drift_verdict

    # the frames hold three of the numeric features: the others are not available, so not reported
    _, v = drift_verdict(reference, current, config, score_date="2025-03-01", model_version="1", reference_label="r")
    feature = {f.name: f for f in v.monitored}[ratio]
    assert feature.drifted and feature.threshold == 0.35 and feature.value > 0.35
    assert re.fullmatch(
        r"rate_change: sum support_contacts_30d / sum sessions_30d 0\.0\d+ -> 0\.\d+, z \d+\.\d+", feature.reason
    )
    assert v.retrain and v.drifted_features == [ratio]
    assert f"{ratio} {feature.value:.3f} (threshold 0.35)" in v.reasons[0]
    rows = pd.DataFrame(v.table_rows()).assign(score_date="2025-03-01", model_version="1")
    assert DriftVerdict.from_rows(rows).to_dict() == v.to_dict()
    clash = config.with_overrides({"monitoring": {"ratio_features": {"sessions_30d": ["a", "b"]}}})
    with pytest.raises(MonitoringError, match="already a numeric feature"):
        drift_plan(names, clash, names)
    with pytest.raises(ValueError, match=r"must be \[numerator, denominator\]"):
        Config().with_overrides({"monitoring": {"ratio_features": {"x": ["a"]}}})


def test_reference_period_is_both_or_neither():
    assert reference_period(None, None) is None and reference_period("", "") is None
    assert [d.isoformat() for d in reference_period("2025-01-01", "2025-01-31")] == ["2025-01-01", "2025-01-31"]
    with pytest.raises(MonitoringError, match="go together"):
        reference_period("2025-01-01", None)
    with pytest.raises(MonitoringError, match="is after"):
        reference_period("2025-02-01", "2025-01-01")
    with pytest.raises(MonitoringError, match="YYYY-MM-DD"):
        reference_period("January", "2025-01-31")


def test_log_table_result_and_report_agree_and_a_chosen_period(tiny_config, standins, monkeypatch, caplog):
    """One monitor run against a chosen period: the log line, the table, the result and the report title
    carry the same verdict."""
    standins.install_standin(monkeypatch)
    config = tiny_config
    score_customers(config, standins.PAST_DATE, "1", "run-past")
    score_customers(config, standins.SCORE_DATE, "1", "run-today")

    with pytest.raises(MonitoringError, match="no score date between reference_start 2020-01-01"):
        monitor_scores(
            config,
            standins.SCORE_DATE,
            "1",
            reference_start="2020-01-01",
            reference_end="2020-01-31",
            log_to_mlflow=False,
        )
    caplog.set_level(logging.INFO, logger="pipelines.monitoring.monitor")
    result = monitor_scores(
        config,
        standins.SCORE_DATE,
        "1",
        reference_start=standins.PAST_DATE,
        reference_end=standins.PAST_DATE,
        log_to_mlflow=False,
    )
    verdict = result["verdict"]
    assert result["reference"].startswith(f"scores of {standins.PAST_DATE}..{standins.PAST_DATE} (1 score date")
    assert verdict["reference"] == result["reference"]
    assert result["retrain"] == verdict["retrain"] and result["reasons"] == verdict["reasons"]
    assert result["drifted_features"] == verdict["drifted_features"]
    assert {f["name"] for f in verdict["excluded"]} >= {"tenure_days", "orders_365d"}
    assert all(f["reason"] for f in verdict["excluded"])

    with open_warehouse(config) as wh:
        table = wh.query_df(
            wh.render("SELECT * FROM {monitoring_drift} WHERE score_date = :d"), {"d": standins.SCORE_DATE}
        )
    assert DriftVerdict.from_rows(table).to_dict() == verdict
    assert verdict["headline"] in caplog.text
    from pipelines.ops.drift import drift_card

    card = drift_card(config)  # what the plugin page renders (its own reader of the same rows)
    assert card["headline"] == verdict["headline"] and card["retrain"] is verdict["retrain"]
    assert card["reasons"] == verdict["reasons"] and card["reference"] == verdict["reference"]
    assert card["drifted_features"] == verdict["drifted_features"]
    assert [(f["name"], f["reason"]) for f in card["excluded"]] == [
        (f["name"], f["reason"]) for f in verdict["excluded"]
    ]
    assert card["prediction"] == verdict["prediction"]
    html = Path(result["report_path"]).read_text()
    assert f"<title>Churn drift {standins.SCORE_DATE}, model v1: " in html
    import html as html_lib

    assert html_lib.escape(verdict["headline"]) in html
