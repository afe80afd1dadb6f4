"""Assignment: a stable holdout, honest propensities, the budget, the business rules."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipelines.retention.assign import (
    BUDGET_REASON,
    RetentionError,
    assign_actions,
    eligibility,
    holdout_mask,
    plan_assignments,
    srm_pvalue,
    worst_case_cost,
)
from pipelines.retention.context import load_consent, load_context
from tests.pipelines.retention.conftest import ACTION_DATE, fixed_recommender, write_scores


def _plan(config, wh, action_date=ACTION_DATE):
    context = load_context(wh, action_date)
    consent = load_consent(wh, context["customer_id"].to_numpy(), ["email", "phone"], True)
    eligible = eligibility(config, context, consent)
    return context, eligible, plan_assignments(config, context, eligible, action_date)


def test_holdout_is_stable_across_runs_and_dates(shop):
    config, wh = shop
    first = assign_actions(config, ACTION_DATE, wh=wh, recommender=fixed_recommender)
    assert first["rows"] > 1000
    later = ACTION_DATE + dt.timedelta(days=7)
    write_scores(wh, config, later)
    assign_actions(config, later, wh=wh, recommender=fixed_recommender)
    rows = wh.query_df(wh.render('SELECT customer_id, action_date, "group", action FROM {retention_actions}'))
    held = rows[rows["group"] == "holdout"]
    assert (held["action"] == "none").all()  # never contacted
    by_date = {d: set(g["customer_id"]) for d, g in held.groupby("action_date")}
    both = set(rows.loc[rows["action_date"] == rows["action_date"].min(), "customer_id"])
    both &= set(rows.loc[rows["action_date"] == rows["action_date"].max(), "customer_id"])
    first_held, second_held = (s & both for s in by_date.values())
    assert first_held == second_held and first_held
    ids = np.arange(1, 20_001)
    mask = holdout_mask(ids, config.retention.holdout_salt, 0.1)
    assert np.array_equal(mask, holdout_mask(ids, config.retention.holdout_salt, 0.1))
    assert abs(mask.mean() - 0.1) < 0.01
    assert not np.array_equal(mask, holdout_mask(ids, "another-salt", 0.1))


def test_propensities_in_unit_interval_and_consistent(shop):
    config, wh = shop
    _, _, plan = _plan(config, wh)
    assert ((plan["propensity"] > 0) & (plan["propensity"] <= 1)).all()
    eps = config.retention.exploration_share
    for row in plan.itertuples():
        eligible = row.eligible_actions.split(",")
        assert row.action in eligible
        if row.group == "holdout" or row.reason == BUDGET_REASON:
            assert row.propensity == 1.0 and row.action == "none"
            continue
        expected = (1 - eps) * (row.action == row.policy_action) + eps / len(eligible)
        assert row.propensity == pytest.approx(expected)
    # The logged propensities are the real assignment probabilities: their inverse sums to the population.
    randomised = plan[(plan["group"] != "holdout") & (plan["reason"] != BUDGET_REASON)]
    for action in ("coupon", "recommendation"):
        elig = randomised["eligible_actions"].str.split(",").apply(lambda s, a=action: a in s)
        given = randomised["action"] == action
        ht = (1 / randomised.loc[given, "propensity"]).sum()
        assert ht == pytest.approx(elig.sum(), rel=0.15)


def test_budget_is_respected(shop):
    config, wh = shop
    tight = config.with_overrides({"retention": {"budget_per_run": 300.0}})
    _, eligible, plan = _plan(tight, wh)
    spend = worst_case_cost(tight, eligible)[
        plan["reason"].ne(BUDGET_REASON).to_numpy() & plan["group"].ne("holdout").to_numpy()
    ]
    assert spend.sum() <= 300.0
    assert (plan["reason"] == BUDGET_REASON).sum() > 0
    costs = {"none": 0.0, **{a.name: a.cost_per_contact + a.cost_when_redeemed for a in tight.retention.actions}}
    assert plan["action"].map(costs).sum() <= 300.0
    # Highest churn risk first under the cold-start rules.
    inside = plan.loc[plan["reason"].ne(BUDGET_REASON) & plan["group"].ne("holdout"), "churn_probability"]
    outside = plan.loc[plan["reason"].eq(BUDGET_REASON), "churn_probability"]
    assert inside.min() >= outside.max() - 1e-12


def test_business_rules_gate_actions(shop):
    config, wh = shop
    context, eligible, plan = _plan(config, wh)
    names = config.retention.action_names
    low = (context["risk_tier"] == "low").to_numpy()
    assert not eligible[low, names.index("coupon")].any()  # coupon needs tier >= medium
    returned = (context["days_since_last_return"] <= 30).to_numpy()
    assert not eligible[returned, names.index("coupon")].any()  # no coupon right after a return
    assert eligible[:, 0].all()  # none is always allowed
    no_consent = load_consent(wh, context["customer_id"].to_numpy(), ["email", "phone"], False)
    blocked = eligibility(config, context, no_consent)
    assert not blocked[:, 1:].any()


def test_sample_ratio_check():
    assert srm_pvalue(100, 1000, 0.1) > 0.5
    assert srm_pvalue(200, 1000, 0.1) < 1e-6


def test_no_scores_is_a_clear_error(shop):
    config, wh = shop
    with pytest.raises(RetentionError, match="churn_scores has no rows for score_date 2030-01-01"):
        assign_actions(config, dt.date(2030, 1, 1), wh=wh, recommender=fixed_recommender)
    assert wh.scalar(wh.render("SELECT COUNT(*) FROM {retention_actions} WHERE action_date = '2030-01-01'")) == 0


def test_recommendations_exclude_bought_products():
    from pipelines.retention.recommend import top_k_products

    vectors = np.eye(4)
    vectors[1] = [0.9, 0.1, 0, 0]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    touched = pd.DataFrame({"customer_id": [7, 9], "product_id": [10, 12], "bought": [1, 0]})
    picks = top_k_products(np.array([7, 8]), touched, np.array([10, 11, 12, 13]), vectors, k=2)
    assert picks[0].split(",")[0] == "11"  # closest to what 7 touched, and 10 (bought) is excluded
    assert "10" not in picks[0].split(",")
    assert len(picks[1].split(",")) == 2  # no history: popular products


def test_product_vectors_are_cached_without_pickle(tmp_path, monkeypatch):
    import pipelines.retention.recommend as recommend

    calls = []

    def fake(texts, encoder):
        calls.append(len(texts))
        return np.eye(len(texts))

    monkeypatch.setattr(recommend, "encode_texts", fake)
    first = recommend.product_vectors(["a", "b"], "enc", tmp_path)
    second = recommend.product_vectors(["a", "b"], "enc", tmp_path)
    assert calls == [2] and np.array_equal(first, second)
    assert [p.suffix for p in tmp_path.iterdir()] == [".npy"]
    recommend.product_vectors(["a", "c"], "enc", tmp_path)  # another catalogue: encoded again
    assert calls == [2, 2]


def test_withdrawn_consent_blocks_the_channel(shop):
    from pipelines.contract import CONTACT_CONSENT

    config, wh = shop
    context = load_context(wh, ACTION_DATE)
    ids = context["customer_id"].to_numpy()[:50]
    rows = pd.DataFrame(
        {"customer_id": ids, "channel": "email", "consented": False, "updated_at": pd.Timestamp("2025-06-01", tz="UTC")}
    )
    wh.replace_table(CONTACT_CONSENT, rows)
    try:
        consent = load_consent(wh, context["customer_id"].to_numpy(), ["email", "phone"], True)
        eligible = eligibility(config, context, consent)
        names = config.retention.action_names
        blocked = np.isin(context["customer_id"].to_numpy(), ids)
        for action in ("coupon", "recommendation"):  # email actions
            assert not eligible[blocked, names.index(action)].any()
        assert eligible[~blocked, names.index("recommendation")].any()
        assert consent.loc[ids, "phone"].all()  # another channel keeps the default
    finally:
        wh.replace_table(CONTACT_CONSENT, rows.iloc[:0])
