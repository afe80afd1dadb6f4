"""Date coercion shared by jobs: XCom, the CLI and the warehouse hand dates over as strings or timestamps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any


def as_date(value: Any) -> dt.date:
    """A calendar date (UTC) from a date, a (tz-aware) datetime or pandas Timestamp, or an ISO string."""
    if isinstance(value, dt.datetime):  # pandas.Timestamp is a datetime too
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValueError(f"not a date: {value!r}") from None


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
