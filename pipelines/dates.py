"""Dates, one implementation for every layer: XCom, the CLI and the warehouse hand them over as strings,
dates or (tz-aware) timestamps, and every one of them means a UTC calendar day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any


def as_date(value: Any) -> dt.date:
    """The UTC calendar date of a date, a datetime or pandas Timestamp, or an ISO 8601 string.

    A value with an offset or zone is converted to UTC first (``2025-03-01T23:00:00-05:00`` is 2025-03-02);
    a naive datetime is taken as UTC, like every timestamp in the warehouse.
    """
    if isinstance(value, dt.datetime):  # pandas.Timestamp is a datetime too
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return as_date(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD or an ISO 8601 timestamp): {value!r}") from None


def utc_midnight(day: Any) -> dt.datetime:
    """00:00 UTC of the day: the instant a cutoff or score date stands for (features use data before it)."""
    day = as_date(day)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def resolve_as_of(
    conf: Mapping[str, Any] | None = None,
    data_interval_end: Any = None,
    logical_date: Any = None,
    run_after: Any = None,
) -> str:
    """The date a run reads data as of, as an ISO string.

    Order: an explicit ``conf["as_of"]`` (a manual or monitor-triggered run), the data interval end,
    the logical date, and last ``run_after`` (asset-triggered runs have no logical date). Never
    "latest": re-running or backfilling a date reads exactly what that date could see.
    """
    conf = conf or {}
    for candidate in (conf.get("as_of"), data_interval_end, logical_date, run_after):
        if candidate not in (None, ""):
            return as_date(candidate).isoformat()
    raise ValueError("cannot tell the run's as-of date: no conf['as_of'], data interval, logical date or run_after")
