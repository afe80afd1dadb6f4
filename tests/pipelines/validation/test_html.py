"""Offline report helpers: CDN tags removed, a title and a context banner added, idempotently."""

from __future__ import annotations

from pipelines.validation.html import external_asset_refs, run_facts, stamp

PAGE = (
    "<html><head><title>x</title>"
    '<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap.min.css">'
    '<script src="https://code.jquery.com/jquery.min.js"></script><script>var inline = 1;</script>'
    '</head><body><a href="https://greatexpectations.io">docs</a></body></html>'
)


def test_stamp_removes_cdn_assets_keeps_links_and_says_what_it_is():
    assert len(external_asset_refs(PAGE)) == 2
    out = stamp(PAGE, "Drift report 2026-01-01", {"model version": "3", "DAG run": None})
    assert external_asset_refs(out) == []
    assert "<title>Drift report 2026-01-01</title>" in out and "model version</b> 3" in out
    assert "DAG run" not in out  # empty facts are left out
    assert "var inline = 1" in out and 'href="https://greatexpectations.io"' in out  # own scripts and anchors stay
    assert "var inline" not in stamp(PAGE, "t", {}, strip_scripts=True)
    again = stamp(out, "Drift report 2026-01-01", {"model version": "4"})
    assert again.count("churn-report-context") == 1 and "model version</b> 4" in again


def test_run_facts_come_from_airflow_task_context(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID", raising=False)
    monkeypatch.delenv("AIRFLOW_CTX_DAG_RUN_ID", raising=False)
    assert run_facts() == {}
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "churn_monitoring")
    monkeypatch.setenv("AIRFLOW_CTX_DAG_RUN_ID", "scheduled__2026-01-01")
    assert run_facts() == {"DAG": "churn_monitoring", "DAG run": "scheduled__2026-01-01"}
