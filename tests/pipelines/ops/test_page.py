"""The operator page's formatting and charts: values for people, tiers low -> high, escaped, no scripts."""

from __future__ import annotations

import re

from pipelines.ops.charts import render_chart
from pipelines.ops.page import fmt_number, fmt_time, render_page

HISTORY = {
    "tiers": {"available": True, "dates": ["2026-01-01", "2026-01-08"], "tiers": {"low": [5, 6], "high": [1, 2]}},
    "distribution": {
        "available": True,
        "score_date": "2026-01-08",
        "bins": 4,
        "counts": [3, 2, 1, 0],
        "tier_bounds": [0, 0.5],
    },
    "drift": {"available": False, "message": "No drift results yet."},
    "performance": {"available": False, "message": "No realised performance yet."},
}
CHAMPION = {
    "available": True,
    "name": "churn-risk",
    "version": "3",
    "kind": "transformer",
    "promoted_at": "2026-01-01T03:12:45.123456+00:00",
    "promotion_reason": "gate: <beat> champion",
    "run_id": "abc",
    "run_name": "train-2026-01-01",
    "run_url": "http://localhost:5000/#/experiments/1/runs/abc",
    "metrics": [{"key": "n", "label": "test customers", "champion": 973.0, "transformer": 973.0, "baseline": None}],
}
SUMMARY = {
    "model_name": "churn-risk",
    "scoring": {
        "available": True,
        "score_date": "2026-01-08",
        "rows": 1234567,
        "tiers": {"high": 2, "low": 6, "medium": 4},
    },
    "drift": {"available": False, "message": "No drift results yet."},
    "generated_at": "2026-01-08T06:00:01.999999+00:00",
}


def test_numbers_and_times_are_for_people():
    assert fmt_number(973.0, "test_n") == "973"
    assert fmt_number(1000.0, "current_rows") == "1,000"
    assert fmt_number(0.61234, "pr_auc") == "0.612"
    assert fmt_number(None) == "-"
    assert fmt_time("2026-01-01T03:12:45.123456+00:00") == "2026-01-01 03:12 UTC"
    assert fmt_time("2026-01-01T04:12:45+01:00") == "2026-01-01 03:12 UTC"
    assert fmt_time("2026-01-01") == "2026-01-01"


def test_page_orders_tiers_escapes_and_links_the_run():
    html = render_page(
        SUMMARY, CHAMPION, HISTORY, {"available": False, "message": "no Airflow"}, tier_order=["low", "medium", "high"]
    )
    scoring = html[html.index("id='scoring'") :]
    assert scoring.index(">low<") < scoring.index(">medium<") < scoring.index(">high<")
    assert "1,234,567" in html and "973" in html and "973.0" not in html
    assert "&lt;beat&gt;" in html and "<beat>" not in html
    assert "href='http://localhost:5000/#/experiments/1/runs/abc'" in html
    assert ".123456" not in html and ":01.9" not in html
    assert "charts/tiers.svg" in html and "charts/scores.svg" in html
    assert "No drift results yet." in html and "charts/drift.svg" not in html  # a message, not a broken image
    assert not re.search(r"<script|<link[^>]+stylesheet|https?://[^'\"]+\.(js|css)", html)


def test_charts_are_standalone_svg():
    svg = render_chart("tiers", HISTORY)
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert not re.search(r"(href|src)=\"https?://", svg)  # namespaces only, nothing fetched
    assert render_chart("scores", HISTORY)
    assert render_chart("drift", HISTORY) is None  # no data: the page shows the message instead
    assert render_chart("nope", HISTORY) is None


def test_drift_section_shows_the_monitors_decision_not_any_drifted_row():
    verdict = {
        "available": True,
        "score_date": "2026-01-08",
        "model_version": "3",
        "retrain": False,
        "reasons": [],
        "headline": "no retrain: 0/12 monitored features drifted (share 0.00 < 0.30)",
        "monitored": [{"name": "orders_90d", "drifted": False}],
        "drifted_features": [],
        "drift_share": 0.0,
        "drift_share_threshold": 0.3,
        "prediction": {"value": 0.01, "threshold": 0.1, "drifted": False},
        "excluded": [{"name": "orders_365d", "drifted": True, "reason": "grows with shop age"}],
    }
    summary = {**SUMMARY, "drift": {"available": True, "drifted": True, "score_date": "2026-01-08"}}
    html = render_page(summary, CHAMPION, HISTORY, {}, tier_order=["low", "high"], verdict=verdict)
    drift = html[html.index("id='drift'") : html.index("id='performance'")]
    assert "no retrain" in drift and "drift detected" not in drift
    assert "0/12 monitored features drifted" in drift
    assert "orders_365d (moved): grows with shop age" in drift and "never a retrain reason" in drift


def test_verdict_read_from_rows_matches_the_monitors_own_reading():
    """The page's light reader agrees with DriftVerdict.from_rows on the rows DriftVerdict wrote."""
    import pandas as pd

    from pipelines.monitoring.verdict import EXCLUDED, MONITORED, DriftVerdict, FeatureDrift
    from pipelines.ops.drift import verdict_from_rows

    written = DriftVerdict(
        score_date="2026-01-08",
        model_version="3",
        reference="2025-12-01..2025-12-31",
        method="wasserstein",
        features=(
            FeatureDrift("orders_90d", MONITORED, 0.4, 0.1, True),
            FeatureDrift("recency", MONITORED, 0.01, 0.1, False),
            FeatureDrift("orders_365d", EXCLUDED, 0.5, 0.1, True, "grows with shop age"),
        ),
        drift_share_threshold=0.3,
        feature_drift_threshold=0.1,
        prediction_drift=0.2,
        prediction_drift_threshold=0.1,
        min_pr_auc=0.3,
        reasons=("prediction drift 0.200 >= 0.100", "1/2 monitored features drifted"),
    )
    rows = written.table_rows()
    card = verdict_from_rows(rows, "2026-01-08", "3")
    again = DriftVerdict.from_rows(pd.DataFrame(rows), score_date="2026-01-08", model_version="3").to_dict()
    for key in ("retrain", "headline", "reasons", "drifted_features", "drift_share", "reference"):
        assert card[key] == again[key], key
    assert card["prediction"] == again["prediction"]
    assert [f["name"] for f in card["excluded"]] == ["orders_365d"] and card["excluded"][0]["reason"]
    assert verdict_from_rows([r for r in rows if r["metric"] != "retrain"], "2026-01-08", "3") is None
