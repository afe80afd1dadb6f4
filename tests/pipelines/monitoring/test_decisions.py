"""The monitoring DAG's decisions: which scoring run, retrain or not."""

from __future__ import annotations

import pytest

from pipelines.monitoring.decisions import NoScoringRunError, retrain_reason, scoring_run_to_monitor, should_retrain


def test_retrain_decision_and_reason():
    assert should_retrain({"retrain": True, "reasons": ["drift share 0.5 > 0.3"]})
    assert not should_retrain({"retrain": False}) and not should_retrain(None)
    assert retrain_reason({"reasons": ["a", "b"]}) == "a; b"
    assert retrain_reason({}) == "monitoring requested retraining"


def test_scoring_run_to_monitor_precedence():
    def never(day):
        raise AssertionError("the version is known")

    no_period = {"reference_start": None, "reference_end": None}
    events = [{"score_date": "2026-01-02", "model_version": "3"}, {"score_date": "2026-01-03", "model_version": "4"}]
    latest = scoring_run_to_monitor({}, events, "2026-01-05", never)
    assert latest == {"score_date": "2026-01-03", "model_version": "4", **no_period}  # the latest event wins
    conf = {
        "score_date": "2026-01-01",
        "model_version": "2",
        "reference_start": "2025-06-01",
        "reference_end": "2025-06-30",
    }
    assert scoring_run_to_monitor(conf, events, "2026-01-05", never) == {
        "score_date": "2026-01-01",
        "model_version": "2",
        "reference_start": "2025-06-01",
        "reference_end": "2025-06-30",
    }
    scored = {"2026-01-05": "7"}
    own = scoring_run_to_monitor(None, [None], "2026-01-05T04:00:00+00:00", scored.get)
    assert own == {"score_date": "2026-01-05", "model_version": "7", **no_period}
    with pytest.raises(NoScoringRunError, match="no churn_scores partition for 2026-01-06"):
        scoring_run_to_monitor({}, [], "2026-01-06", scored.get)
