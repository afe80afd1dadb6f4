"""The training run's Markdown summary."""

from __future__ import annotations

from pipelines.registry.summary import render_run_summary


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


def test_run_summary_lists_every_candidate_kind():
    text = render_run_summary(
        as_of="2026-01-01",
        run_id="r1",
        version="3",
        metrics={},
        gate={},
        candidates={"kinds": ["baseline", "hybrid"], "chosen": "hybrid", "rows": {"pr_auc": [0.7, 0.6, 0.8, 0.75]}},
    )
    assert "| metric | baseline val | baseline test | hybrid val | hybrid test |" in text
    assert "| pr_auc | 0.7000 | 0.6000 | 0.8000 | 0.7500 |" in text


def test_run_summary_marks_the_bgnbd_reference():
    text = render_run_summary(
        as_of="2026-01-01",
        run_id="r1",
        version="3",
        metrics={},
        gate={},
        candidates={
            "kinds": ["baseline", "transformer", "bgnbd"],
            "chosen": "baseline",
            "rows": {"pr_auc": [0.7, 0.6, 0.65, 0.55, 0.5, 0.45]},
        },
    )
    assert (
        "| metric | baseline val | baseline test | transformer val | transformer test | bgnbd val | bgnbd test |"
        in text
    )
    assert "the classic BG/NBD model" in text and "a reference only" in text
