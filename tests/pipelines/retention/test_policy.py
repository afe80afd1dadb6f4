"""The learned policy: learns the simulated heterogeneity, persists without pickles, registers in MLflow."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from pipelines.data import simulation
from pipelines.retention import assign_actions, measure_outcomes
from pipelines.retention.assign import RetentionError
from pipelines.retention.effects import load_measured
from pipelines.retention.policy import RetentionPolicy, fit_policy, learn_policy, resolve_policy
from tests.pipelines.retention.conftest import ACTION_DATE, fixed_recommender


@pytest.fixture(scope="module")
def measured(shop):
    config, wh = shop
    config = config.with_overrides({"retention": {"min_outcomes_to_learn": 200}})
    assign_actions(config, ACTION_DATE, wh=wh, recommender=fixed_recommender)
    actions = wh.query_df(wh.render("SELECT customer_id, action FROM {retention_actions}"))
    truth = simulation.play_out(
        wh, actions, ACTION_DATE, config.retention.horizon_days, seed=5, actions=config.retention.action_names
    )
    measure_outcomes(config, ACTION_DATE + dt.timedelta(days=config.retention.horizon_days), wh=wh)
    return config, wh, load_measured(wh, ACTION_DATE), truth


@pytest.mark.parametrize("learner", ["fitted_q", "dr"])
def test_policy_ranks_true_uplift(measured, learner, tmp_path):
    config, _, frame, truth = measured
    policy = fit_policy(config, frame, learner=learner)
    tau, net = policy.predict(frame)
    merged = frame[["customer_id"]].merge(truth, on="customer_id")
    names = config.retention.action_names
    value = merged["order_value"].to_numpy() * np.exp(0.25**2 / 2) * config.retention.margin_rate
    true_net = np.column_stack(
        [
            merged[f"p_{n}"].to_numpy()
            * (value - (config.retention.action(n).cost_when_redeemed if n != "none" else 0))
            - (config.retention.action(n).cost_per_contact if n != "none" else 0)
            for n in names
        ]
    )
    true_net -= true_net[:, [0]]
    eligible = np.array([[n in e.split(",") for n in names] for e in frame["eligible_actions"]])
    chosen = np.where(eligible, net, -np.inf).argmax(axis=1)
    rows = np.arange(len(frame))
    learned = true_net[rows, chosen].mean()
    random = (np.where(eligible, true_net, 0).sum(axis=1) / eligible.sum(axis=1)).mean()
    oracle = np.where(eligible, true_net, -np.inf).max(axis=1).mean()
    print(learner, learned, random, oracle)
    assert learned > max(random, 0.0) and learned > 0.4 * oracle
    assert (net[:, 0] == 0).all() and (tau[:, 0] == 0).all()
    loaded = RetentionPolicy.load(policy.save(tmp_path / "p"))
    assert np.allclose(loaded.predict(frame)[1], net)


def test_policy_folder_with_a_pickle_is_refused(measured, tmp_path):
    config, _, frame, _ = measured
    folder = fit_policy(config, frame).save(tmp_path / "p")
    (folder / "model.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(RetentionError, match=r"other than \.txt/\.json: \['model.pkl'\]"):
        RetentionPolicy.load(folder)


def test_too_few_outcomes_keeps_the_rules(measured):
    config, _, frame, _ = measured
    strict = config.with_overrides({"retention": {"min_outcomes_to_learn": 10**6}})
    with pytest.raises(RetentionError, match="fewer than retention.min_outcomes_to_learn"):
        fit_policy(strict, frame)


@pytest.mark.slow  # a fresh MLflow store (SQLite migrations) takes most of it
def test_learn_registers_and_assignment_uses_it(measured):
    config, wh, _, _ = measured
    assert resolve_policy(config) is None  # cold start
    result = learn_policy(config, ACTION_DATE + dt.timedelta(days=30), wh=wh)
    assert result["version"] == "1" and result["in_sample"]
    policy = resolve_policy(config)
    assert policy is not None and policy.version == "v1"
    later = ACTION_DATE + dt.timedelta(days=30)
    from tests.pipelines.retention.conftest import write_scores

    write_scores(wh, config, later)
    out = assign_actions(config, later, wh=wh, policy=policy, recommender=fixed_recommender)
    assert out["policy_version"] == "v1"
    rows = wh.query_df(wh.render("SELECT * FROM {retention_actions} WHERE action_date = :d"), {"d": later})
    chosen = rows[rows["group"] == "policy"]
    assert chosen["expected_net_value"].notna().all()
    assert (chosen.loc[chosen["action"] != "none", "expected_net_value"] > 0).all()


@pytest.mark.slow  # a fresh MLflow store
def test_update_policy_keeps_the_rules_with_too_few_outcomes(measured, tmp_path):
    from pipelines.retention.jobs import update_policy

    config, _, _, _ = measured
    strict = config.with_overrides(
        {
            "retention": {"min_outcomes_to_learn": 10**6},
            "registry": {"tracking_uri": f"sqlite:///{tmp_path}/fresh.db", "artifact_location": str(tmp_path / "a")},
        }
    )
    out = update_policy(strict, ACTION_DATE + dt.timedelta(days=30))
    assert out["learned"] is False and out["version"] == "rules"
    assert "fewer than retention.min_outcomes_to_learn" in out["reason"]
