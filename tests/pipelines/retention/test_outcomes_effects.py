"""One simulated campaign: outcomes only after the horizon, effects and policy values against the truth."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from pipelines.data import simulation
from pipelines.retention import assign_actions, compute_effects, measure_outcomes
from pipelines.retention.outcomes import outcome_frame
from tests.pipelines.retention.conftest import ACTION_DATE, fixed_recommender


@pytest.fixture(scope="module")
def campaign(shop):
    config, wh = shop
    assign_actions(config, ACTION_DATE, wh=wh, recommender=fixed_recommender)
    actions = wh.query_df(
        wh.render("SELECT * FROM {retention_actions} WHERE action_date = :d ORDER BY customer_id"), {"d": ACTION_DATE}
    )
    truth = simulation.play_out(
        wh,
        actions[["customer_id", "action"]],
        ACTION_DATE,
        config.retention.horizon_days,
        seed=3,
        actions=config.retention.action_names,
    )
    return config, wh, actions, truth


def test_no_outcome_before_its_horizon(campaign):
    config, wh, _, _ = campaign
    horizon = config.retention.horizon_days
    assert measure_outcomes(config, ACTION_DATE + dt.timedelta(days=horizon - 1), wh=wh) == []
    assert wh.scalar(wh.render("SELECT COUNT(*) FROM {retention_outcomes}")) == 0
    with pytest.raises(ValueError, match="matures on 2026-01-31"):
        outcome_frame(wh, config, ACTION_DATE, ACTION_DATE + dt.timedelta(days=horizon - 1))
    done = measure_outcomes(config, ACTION_DATE + dt.timedelta(days=horizon), wh=wh)
    assert [d["action_date"] for d in done] == [ACTION_DATE.isoformat()]
    assert measure_outcomes(config, ACTION_DATE + dt.timedelta(days=horizon + 5), wh=wh) == []  # measured once


def test_outcomes_match_the_simulated_orders_and_costs(campaign):
    config, wh, _, truth = campaign
    measure_outcomes(config, ACTION_DATE + dt.timedelta(days=config.retention.horizon_days), wh=wh)
    out = wh.query_df(wh.render("SELECT * FROM {retention_outcomes} ORDER BY customer_id"))
    merged = out.merge(truth, on=["customer_id", "action"])
    assert len(merged) == len(truth)
    assert (merged["retained"] == merged["ordered"]).all()
    coupon = config.retention.action("coupon")
    c = merged[(merged["action"] == "coupon") & merged["retained"]]
    assert np.allclose(c["cost"], coupon.cost_per_contact + coupon.cost_when_redeemed)
    assert np.allclose(merged["net_value"], merged["revenue"] * config.retention.margin_rate - merged["cost"])


def _true_net(config, truth):
    """True expected net value of each action per customer (the simulator's probabilities and values)."""
    value = truth["order_value"].to_numpy() * np.exp(0.25**2 / 2) * config.retention.margin_rate
    out = {}
    for name in config.retention.action_names:
        a = None if name == "none" else config.retention.action(name)
        p = truth[f"p_{name}"].to_numpy()
        out[name] = p * (value - (a.cost_when_redeemed if a else 0.0)) - (a.cost_per_contact if a else 0.0)
    return out


def test_effects_recover_the_simulated_effects(campaign):
    config, wh, actions, truth = campaign
    measure_outcomes(config, ACTION_DATE + dt.timedelta(days=config.retention.horizon_days), wh=wh)
    rows = compute_effects(config, ACTION_DATE, wh=wh)
    effects = {r["action"]: r for r in rows if r["kind"] == "action_effect"}
    assert set(effects) == {"coupon", "outreach", "recommendation"}
    merged = actions.merge(truth, on=["customer_id", "action"])
    for name, row in effects.items():
        eligible = merged["eligible_actions"].str.split(",").apply(lambda s, a=name: a in s)
        true = float((merged.loc[eligible, f"p_{name}"] - merged.loc[eligible, "p_none"]).mean())
        assert row["ci_low"] <= true <= row["ci_high"], (name, true, row)
        assert row["ci_high"] - row["ci_low"] < 0.25
    stored = wh.query_df(wh.render("SELECT * FROM {retention_effects} WHERE kind = 'action_effect'"))
    assert len(stored) == 3


def test_off_policy_values_agree_with_the_truth(campaign):
    config, wh, actions, truth = campaign
    measure_outcomes(config, ACTION_DATE + dt.timedelta(days=config.retention.horizon_days), wh=wh)
    rows = compute_effects(config, ACTION_DATE, wh=wh)
    values = {(r["action"], r["estimator"]): r for r in rows if r["kind"] == "policy_value"}
    merged = actions.merge(truth, on=["customer_id", "action"])
    logged = merged[merged["group"] != "holdout"].reset_index(drop=True)
    net = _true_net(config, logged)
    eligible = logged["eligible_actions"].str.split(",")
    true_random = np.mean([np.mean([net[a][i] for a in names]) for i, names in enumerate(eligible)])
    true_none = float(net["none"].mean())
    for estimator in ("ips", "snips", "dr"):
        for policy, true in (("random", true_random), ("none", true_none)):
            row = values[(policy, estimator)]
            assert row["ci_low"] <= true <= row["ci_high"], (policy, estimator, true, row)
