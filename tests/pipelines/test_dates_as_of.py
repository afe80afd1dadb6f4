"""The as-of date of a run: conf, data interval, logical date, run_after; UTC dates."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.dates import resolve_as_of


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
