"""fit_candidates end to end on synthetic data with the tiny encoder, and the choice rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.models import load_bundle
from pipelines.training import FitResult, choose_candidate, fit_candidates
from pipelines.training.baseline import train_baseline
from pipelines.training.hybrid import cross_fitted_log_odds, split_for_stacking
from tests.helpers.synthetic import make_sets


@pytest.mark.training
def test_fit_candidates_end_to_end(tiny_config, tmp_path):
    sets = make_sets(n_train=240, n_val=120, n_test=120, seed=7, max_orders=4)
    cfg = tiny_config.with_overrides({"training": {"epochs": 1, "max_train_examples": 100, "max_stacker_rows": 60}})
    calls = []
    result = fit_candidates(cfg, sets, tmp_path / "fit", on_epoch_end=lambda *a: calls.append(a))
    assert isinstance(result, FitResult)
    expected, _ = choose_candidate("best", {k: c.validation_metrics for k, c in result.candidates.items()})
    assert result.chosen == expected and result.notes
    assert set(result.candidates) == {"transformer", "baseline", "hybrid"}
    assert {c[0] for c in calls} == {"transformer", "baseline", "hybrid"}
    for kind, cand in result.candidates.items():
        assert cand.bundle_dir == tmp_path / "fit" / kind
        assert {"roc_auc", "pr_auc", "brier", "ece", "lift_at_10"} <= set(cand.validation_metrics)
        assert cand.history and {"epoch", "train_loss", "val_loss", "val_pr_auc", "samples_per_s"} <= set(
            cand.history[0]
        )
        assert cand.best_epoch >= 1 and cand.seconds > 0
        loaded = load_bundle(cand.bundle_dir)
        assert loaded.kind == kind
        np.testing.assert_allclose(loaded.predict_proba(sets.test), cand.predictor.predict_proba(sets.test), atol=1e-6)
    # the cap binds the transformer only; LightGBM boosts on every training row
    assert load_bundle(result.transformer.bundle_dir).metadata["extra"]["train_rows"] == 100
    assert load_bundle(result.baseline.bundle_dir).metadata["extra"]["train_rows"] == len(sets.train)
    hybrid_meta = load_bundle(result.candidates["hybrid"].bundle_dir).metadata
    assert hybrid_meta["extra"]["stacker_rows"] == 60  # training.max_stacker_rows of the ~120 held-out rows
    if result.chosen == "baseline":
        assert any("did not beat" in note for note in result.notes)


@pytest.mark.training
def test_fit_without_hybrid_trains_two_candidates_on_every_customer(tiny_config, tmp_path):
    sets = make_sets(n_train=160, n_val=80, n_test=40, seed=3, max_orders=3)
    cfg = tiny_config.with_overrides({"training": {"epochs": 1, "hybrid": False}})
    result = fit_candidates(cfg, sets, tmp_path / "fit")
    assert set(result.candidates) == {"transformer", "baseline"}
    assert load_bundle(result.transformer.bundle_dir).metadata["extra"]["train_rows"] == len(sets.train)


@pytest.mark.training
def test_baseline_beats_random_on_signal(tiny_config):
    sets = make_sets(n_train=600, n_val=300, n_test=10, seed=11)
    run = train_baseline(tiny_config, sets.train, sets.validation, sets.feature_names)
    from pipelines.models.metrics import compute_metrics

    m = compute_metrics(sets.validation.churned, run.val_raw)
    assert m["roc_auc"] > 0.7 and m["pr_auc"] > sets.validation.churned.mean() + 0.15
    again = train_baseline(tiny_config, sets.train, sets.validation, sets.feature_names)
    np.testing.assert_array_equal(run.val_raw, again.val_raw)  # deterministic


def test_choose_candidate_rule():
    chosen, notes = choose_candidate("best", {"transformer": {"pr_auc": 0.5}, "baseline": {"pr_auc": 0.4}})
    assert chosen == "transformer" and not any("did not beat" in n for n in notes)
    assert "+0.1000 over the baseline" in notes[-1]
    chosen, notes = choose_candidate("best", {"transformer": {"pr_auc": 0.4}, "baseline": {"pr_auc": 0.5}})
    assert chosen == "baseline" and any("did not beat the LightGBM baseline" in n for n in notes)
    chosen, notes = choose_candidate("transformer", {"transformer": {"pr_auc": 0.4}, "baseline": {"pr_auc": 0.5}})
    assert chosen == "transformer" and any("did not beat" in n for n in notes)


def test_choose_candidate_with_the_hybrid():
    three = {"transformer": {"pr_auc": 0.70}, "baseline": {"pr_auc": 0.80}, "hybrid": {"pr_auc": 0.83}}
    chosen, notes = choose_candidate("best", three)
    assert chosen == "hybrid" and not any("did not beat" in n for n in notes)
    assert "+0.0300 over the baseline" in notes[-1]
    # a tie goes to the cheaper candidate: baseline before hybrid before transformer
    tie = {"transformer": {"pr_auc": 0.8}, "baseline": {"pr_auc": 0.8}, "hybrid": {"pr_auc": 0.8}}
    assert choose_candidate("best", tie)[0] == "baseline"
    chosen, notes = choose_candidate("best", {**three, "hybrid": {"pr_auc": 0.79}})
    assert chosen == "baseline" and "transformer and the hybrid did not beat" in notes[0]
    with pytest.raises(ValueError, match="hybrid"):
        choose_candidate("hybrid", {"transformer": {"pr_auc": 0.4}, "baseline": {"pr_auc": 0.5}})


def test_split_for_stacking_holds_out_whole_customers():
    sets = make_sets(n_train=200, n_val=10, n_test=10, seed=5)
    train = pd.concat([sets.train, sets.train.assign(cutoff_date=sets.train["cutoff_date"] - pd.Timedelta(days=30))])
    encoder_rows, stacker_rows = split_for_stacking(train, 0.4, seed=13)
    assert len(encoder_rows) + len(stacker_rows) == len(train)
    assert not set(encoder_rows["customer_id"]) & set(stacker_rows["customer_id"])  # no customer on both sides
    assert stacker_rows["customer_id"].nunique() == 80  # 40% of 200 customers, every cutoff of each
    again = split_for_stacking(train, 0.4, seed=13)[1]
    assert set(again["customer_id"]) == set(stacker_rows["customer_id"])  # seeded: the same customers each run


def test_cross_fitted_log_odds_never_score_a_customer_with_a_booster_that_saw_it(tiny_config):
    """Labels are noise and a feature names the customer: a booster that saw the row memorises it, one that did not
    cannot, so only out-of-fold log-odds are unrelated to the labels."""
    rng = np.random.default_rng(0)
    n = 400
    train = pd.DataFrame(
        {"customer_id": np.arange(n), "who": rng.permutation(n).astype(float), "churned": rng.integers(0, 2, n)}
    )
    cfg = tiny_config.with_overrides({"training": {"seed": 1}})
    held = train.iloc[:200].reset_index(drop=True)
    out_of_fold = cross_fitted_log_odds(cfg, train, held, ["who"], rounds=200)
    from sklearn.metrics import roc_auc_score

    assert abs(roc_auc_score(held["churned"], out_of_fold) - 0.5) < 0.12
    import lightgbm as lgb

    from pipelines.training.baseline import baseline_params

    # the same booster on every row, held-out customers included, memorises them
    seen = lgb.train(baseline_params(cfg), lgb.Dataset(train[["who"]].to_numpy(float), train["churned"]), 200)
    assert roc_auc_score(held["churned"], seen.predict(held[["who"]].to_numpy(float))) > 0.7
