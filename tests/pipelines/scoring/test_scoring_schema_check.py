"""score_customers (the DAG task) checks the tables against the contract before the model or any feature query."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.scoring import score_customers
from pipelines.warehouse import SchemaMismatchError, open_warehouse


def test_a_retyped_raw_column_stops_scoring_before_the_model_loads(config):
    with open_warehouse(config) as wh:
        wh.init_schema()
        wh.execute(f"ALTER TABLE {wh.qualified('events')} ALTER COLUMN event_at TYPE DATE")
    with pytest.raises(SchemaMismatchError, match=r"events\.event_at: type DATE, expected TIMESTAMPTZ") as info:
        score_customers(config, "2026-01-01", "1", "manual__drift")
    assert info.value.exit_code == 10
    assert not Path(config.tracking_uri.removeprefix("sqlite:///")).exists()  # the registry was never opened
