"""Date coercion shared by jobs: XCom, the CLI and the warehouse hand dates over as strings or timestamps."""

from __future__ import annotations

import datetime as dt
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
