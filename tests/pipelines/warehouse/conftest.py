"""Helpers shared by the warehouse tests."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest


def make_scores(day: dt.date, ids, prob=0.5, version="1") -> pd.DataFrame:
    """churn_scores rows of one day for the given customer ids."""
    return pd.DataFrame(
        {
            "customer_id": list(ids),
            "score_date": day,
            "churn_probability": prob,
            "risk_tier": "medium",
            "model_name": "churn-risk",
            "model_version": version,
            "run_id": "r",
            "scored_at": pd.Timestamp("2025-01-01", tz="UTC"),
        }
    )


@pytest.fixture
def scores():
    """``scores(day, ids, prob=0.5, version="1")`` -> a churn_scores frame."""
    return make_scores
