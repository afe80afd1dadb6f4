"""The retention SQL and partition writes on both warehouses (DuckDB and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from pipelines.data import simulation
from pipelines.data.generator import generate_sample_data
from pipelines.retention import assign_actions, compute_effects, measure_outcomes
from tests.pipelines.retention.conftest import ACTION_DATE, fixed_recommender, write_scores


def test_cycle_on_each_backend(backend_config, warehouse):
    config = backend_config.with_overrides({"retention": {"budget_per_run": 1e6}})
    generate_sample_data(warehouse, customers=300, seed=2, start=dt.date(2025, 1, 1), end=dt.date(2025, 12, 31))
    write_scores(warehouse, config, ACTION_DATE)
    first = assign_actions(config, ACTION_DATE, wh=warehouse, recommender=fixed_recommender)
    again = assign_actions(config, ACTION_DATE, wh=warehouse, recommender=fixed_recommender)
    assert first == {**again, "rows": first["rows"]}  # a rerun replaces the same decisions
    assert warehouse.row_count("retention_actions") == first["rows"]
    actions = warehouse.query_df(warehouse.render("SELECT customer_id, action FROM {retention_actions}"))
    simulation.play_out(warehouse, actions, ACTION_DATE, config.retention.horizon_days, seed=1)
    orders = warehouse.row_count("orders")
    simulation.play_out(warehouse, actions, ACTION_DATE, config.retention.horizon_days, seed=1)
    assert warehouse.row_count("orders") == orders  # the day's simulated orders are replaced, not added
    done = measure_outcomes(config, ACTION_DATE + dt.timedelta(days=30), wh=warehouse)
    assert done and done[0]["rows"] == first["rows"]
    rows = compute_effects(config, ACTION_DATE, wh=warehouse)
    assert warehouse.row_count("retention_effects") == len(rows) > 3
