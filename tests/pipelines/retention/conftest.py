"""A small simulated shop with churn scores for one action date (built once per test module)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

ACTION_DATE = dt.date(2026, 1, 1)


def write_scores(wh, config, score_date: dt.date) -> pd.DataFrame:
    """Churn scores from a fixed formula over recency and frequency (not the production model)."""
    from pipelines.contract import CHURN_SCORES
    from pipelines.data.simulation import customer_traits
    from pipelines.scoring.batch import assign_risk_tiers

    traits = customer_traits(wh, score_date)
    active = traits[traits["orders_365d"] > 0]
    p = 1 / (1 + np.exp(-(-1.0 + active["days_since_last_order"] / 60 - 0.3 * active["orders_90d"])))
    scores = pd.DataFrame(
        {
            "customer_id": active["customer_id"],
            "score_date": score_date,
            "churn_probability": p,
            "risk_tier": assign_risk_tiers(p, config.scoring.risk_tiers),
            "model_name": "stand-in",
            "model_version": "1",
            "run_id": "test",
            "scored_at": pd.Timestamp.now(tz="UTC"),
        }
    )
    wh.replace_partition(CHURN_SCORES, scores, "score_date", score_date)
    return scores


def fixed_recommender(wh, rows):
    return pd.Series(["1,2,3"] * len(rows), index=rows.index)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """(config, warehouse) of a 3,000-customer simulated shop scored on ACTION_DATE (DuckDB)."""
    from pipelines.config import Config
    from pipelines.data.generator import generate_sample_data
    from pipelines.warehouse import connect

    path = tmp_path_factory.mktemp("retention") / "wh.duckdb"
    config = Config().with_overrides(
        {
            "warehouse": {"url": f"duckdb:///{path}"},
            "registry": {
                "tracking_uri": f"sqlite:///{path.parent}/mlflow.db",
                "artifact_location": str(path.parent / "ml"),
            },
            "retention": {"budget_per_run": 1e7, "holdout_share": 0.3, "exploration_share": 0.5},
        }
    )
    with connect(config.warehouse_url, None) as wh:
        wh.init_schema()
        generate_sample_data(wh, customers=3000, seed=1, start=dt.date(2024, 1, 1), end=dt.date(2025, 12, 31))
        write_scores(wh, config, ACTION_DATE)
        yield config, wh
