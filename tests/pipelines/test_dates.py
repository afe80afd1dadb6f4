import datetime as dt

import pandas as pd
import pytest

from pipelines.dates import as_date


@pytest.mark.parametrize(
    "value",
    [
        dt.date(2025, 3, 1),
        "2025-03-01",
        "2025-03-01T23:00:00+00:00",
        dt.datetime(2025, 3, 1, 12),
        pd.Timestamp("2025-03-01 12:00", tz="UTC"),
        pd.Timestamp("2025-03-02 00:30", tz="Europe/Berlin"),  # 2025-03-01 23:30 UTC
    ],
)
def test_as_date(value):
    assert as_date(value) == dt.date(2025, 3, 1)


def test_as_date_rejects_garbage():
    with pytest.raises(ValueError, match="not a date"):
        as_date("yesterday")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-03-01T23:00:00-05:00", dt.date(2025, 3, 2)),  # 04:00 UTC the next day
        ("2025-03-02T00:30:00+01:00", dt.date(2025, 3, 1)),  # 23:30 UTC the day before
        ("2025-03-01T23:00:00Z", dt.date(2025, 3, 1)),
        ("2025-03-01 12:00:00", dt.date(2025, 3, 1)),  # naive: taken as UTC
    ],
)
def test_as_date_converts_offsets_to_the_utc_day(value, expected):
    assert as_date(value) == expected


def test_utc_midnight_is_the_start_of_the_utc_day():
    from pipelines.dates import utc_midnight

    assert utc_midnight("2025-03-01T23:00:00-05:00") == dt.datetime(2025, 3, 2, tzinfo=dt.UTC)
    assert utc_midnight(dt.date(2025, 3, 1)).utcoffset() == dt.timedelta(0)
