"""The small, Airflow-free glue the DAG tasks call (pipelines.orchestration)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from pipelines.orchestration import (
    render_run_summary,
    resolve_as_of,
    retrain_reason,
    should_retrain,
    small_dict,
)


def test_as_of_prefers_conf_then_interval_then_logical_then_run_after():
    utc = dt.UTC
    end = dt.datetime(2026, 1, 1, 3, 0, tzinfo=utc)
    assert resolve_as_of({"as_of": "2025-12-01"}, end, end, end) == "2025-12-01"
    assert resolve_as_of({}, end, None, None) == "2026-01-01"
    assert resolve_as_of(None, None, dt.datetime(2025, 7, 1, 3, tzinfo=utc), None) == "2025-07-01"
    assert resolve_as_of({}, None, None, dt.datetime(2025, 3, 2, 23, 30, tzinfo=utc)) == "2025-03-02"
    # a non-UTC timestamp is converted to its UTC date first
    tz = dt.timezone(dt.timedelta(hours=-5))
    assert resolve_as_of({}, dt.datetime(2025, 12, 31, 22, 0, tzinfo=tz)) == "2026-01-01"
    with pytest.raises(ValueError):
        resolve_as_of({}, None, None, None)


def test_retrain_decision_and_reason():
    assert should_retrain({"retrain": True, "reasons": ["drift share 0.5 > 0.3"]})
    assert not should_retrain({"retrain": False}) and not should_retrain(None)
    assert retrain_reason({"reasons": ["a", "b"]}) == "a; b"
    assert retrain_reason({}) == "monitoring requested retraining"


def test_small_dict_keeps_only_xcom_friendly_values():
    out = small_dict(
        {
            "pr_auc": np.float64(0.41234567),
            "n": np.int64(3),
            "ok": True,
            "tiers": {"low": np.int64(2)},
            "reasons": ["x", "y"],
            "frame": object(),
            "day": dt.date(2026, 1, 1),
        }
    )
    assert out == {
        "pr_auc": 0.412346,
        "n": 3,
        "ok": True,
        "tiers": {"low": 2},
        "reasons": ["x", "y"],
        "day": "2026-01-01",
    }


def test_run_summary_markdown():
    text = render_run_summary(
        as_of="2026-01-01",
        run_id="abc",
        version="2",
        metrics={"test_pr_auc": 0.5},
        gate={"promoted": True, "reasons": ["no champion yet"], "decision": "promoted"},
        airflow_run_id="manual__x",
        model_name="churn-risk",
    )
    assert "# Churn training run 2026-01-01" in text
    assert "promoted to @champion" in text and "| test_pr_auc | 0.5000 |" in text and "no champion yet" in text


def test_run_summary_shows_both_candidates_side_by_side():
    from pipelines.orchestration import render_run_summary

    text = render_run_summary(
        as_of="2026-01-01",
        run_id="r1",
        version="3",
        metrics={"pr_auc": 0.7},
        gate={"promoted": False},
        candidates={
            "chosen": "baseline",
            "notes": "The transformer did not beat the LightGBM baseline",
            "rows": {"pr_auc": [0.75, 0.72, 0.80, 0.71]},
        },
    )
    assert "registered: **baseline**" in text
    assert "| pr_auc | 0.7500 | 0.7200 | 0.8000 | 0.7100 |" in text
    assert "did not beat" in text
