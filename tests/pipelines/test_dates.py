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
