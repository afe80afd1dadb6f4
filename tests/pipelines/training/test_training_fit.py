"""fit_candidates end to end on synthetic data with the tiny encoder, and the choice rule."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.models import load_bundle
from pipelines.training import FitResult, choose_candidate, fit_candidates
from pipelines.training.baseline import train_baseline
from tests.helpers.synthetic import make_sets


@pytest.mark.training
def test_fit_candidates_end_to_end(tiny_config, tmp_path):
    sets = make_sets(n_train=240, n_val=120, n_test=120, seed=7, max_orders=4)
    cfg = tiny_config.with_overrides({"training": {"epochs": 1, "max_train_examples": 200}})
    calls = []
    result = fit_candidates(cfg, sets, tmp_path / "fit", on_epoch_end=lambda *a: calls.append(a))
    assert isinstance(result, FitResult)
    expected, _ = choose_candidate("best", result.transformer.validation_metrics, result.baseline.validation_metrics)
    assert result.chosen == expected and result.notes
    assert {c[0] for c in calls} == {"transformer", "baseline"}
    for cand, kind in ((result.transformer, "transformer"), (result.baseline, "baseline")):
        assert cand.bundle_dir == tmp_path / "fit" / kind
        assert {"roc_auc", "pr_auc", "brier", "ece", "lift_at_10"} <= set(cand.validation_metrics)
        assert cand.history and {"epoch", "train_loss", "val_loss", "val_pr_auc", "samples_per_s"} <= set(
            cand.history[0]
        )
        assert cand.best_epoch >= 1 and cand.seconds > 0
        loaded = load_bundle(cand.bundle_dir)
        assert loaded.kind == kind
        np.testing.assert_allclose(loaded.predict_proba(sets.test), cand.predictor.predict_proba(sets.test), atol=1e-6)
    if result.chosen == "baseline":
        assert any("did not beat" in note for note in result.notes)


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
    chosen, notes = choose_candidate("best", {"pr_auc": 0.5}, {"pr_auc": 0.4})
    assert chosen == "transformer" and not any("did not beat" in n for n in notes)
    chosen, notes = choose_candidate("best", {"pr_auc": 0.4}, {"pr_auc": 0.5})
    assert chosen == "baseline" and any("did not beat the LightGBM baseline" in n for n in notes)
    chosen, notes = choose_candidate("transformer", {"pr_auc": 0.4}, {"pr_auc": 0.5})
    assert chosen == "transformer" and any("did not beat" in n for n in notes)
