"""Which action date the retention DAG assigns: conf, else the latest scores event, else the run's date."""

from __future__ import annotations

from pipelines.retention.decisions import action_date_to_assign


def test_action_date_precedence():
    events = [{"score_date": "2026-01-02"}, None, {"score_date": "2026-01-03"}]
    assert action_date_to_assign({}, events, "2026-01-05") == "2026-01-03"  # the latest event wins
    assert action_date_to_assign({"action_date": "2026-01-01"}, events, "2026-01-05") == "2026-01-01"
    assert action_date_to_assign(None, [], "2026-01-05T23:30:00-05:00") == "2026-01-06"  # the UTC day
