"""XCom values stay small and JSON-able."""

from __future__ import annotations

import datetime as dt

import numpy as np

from pipelines.xcom import small_dict


def test_small_dict_keeps_only_xcom_friendly_values():
    out = small_dict(
        {
            "pr_auc": np.float64(0.41234567),
            "n": np.int64(3),
            "ok": True,
            "tiers": {"low": np.int64(2)},
            "reasons": ["x", "y"],
            "frame": object(),
            "day": dt.date(2026, 1, 1),
        }
    )
    assert out == {
        "pr_auc": 0.412346,
        "n": 3,
        "ok": True,
        "tiers": {"low": 2},
        "reasons": ["x", "y"],
        "day": "2026-01-01",
    }
