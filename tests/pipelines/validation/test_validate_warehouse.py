"""Real GX checkpoints on DuckDB and PostgreSQL: clean data passes, each broken rule is named."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from pipelines.contract import ExitCode
from pipelines.validation import ValidationFailed, ValidationReport, validate_warehouse
from pipelines.validation.html import external_asset_refs
from pipelines.warehouse import connect
from tests.pipelines.validation._validation_data import (
    AS_OF,
    EXPECTED_DIRTY_FAILURES,
    break_everything,
    clean_frames,
    load,
)


@pytest.fixture
def val_config(backend_config, tmp_path):
    """The backend config with Data Docs under tmp_path (never into the repo's reports/)."""
    return backend_config.with_overrides({"validation": {"data_docs_dir": str(tmp_path / "data_docs")}})


def _warehouse(config):
    return connect(config.warehouse_url, config.warehouse_schema)


def test_clean_warehouse_passes_and_writes_data_docs(val_config):
    with _warehouse(val_config) as wh:
        load(wh, clean_frames())
        # Our own connection stays open: GX's connection must coexist with it in one process.
        report = validate_warehouse(val_config, AS_OF)
        assert wh.row_count("orders") == 4
    assert isinstance(report, ValidationReport) and report.success and report.failures == []
    assert report.statistics["evaluated_expectations"] == report.statistics["successful_expectations"] > 60
    assert set(report.statistics["tables"]) == {"customers", "products", "orders", "order_items", "events", "reviews"}
    index = Path(report.data_docs_path)
    assert index.name == "index.html" and index.is_file() and "orders" in index.read_text()
    # offline: no page of the site loads a script or stylesheet from the internet; each says what it validated
    site = Path(val_config.validation.data_docs_dir)
    pages = list(site.rglob("*.html"))
    assert len(pages) > 6 and not [p for p in pages if external_asset_refs(p.read_text())]
    orders_page = next(p for p in pages if "validations/orders/" in p.as_posix())
    assert "__none__" not in orders_page.as_posix() and f"as-of-{AS_OF}" in orders_page.as_posix()
    assert f"as of</b> {AS_OF}" in orders_page.read_text() and orders_page.name in index.read_text()
    if val_config.warehouse_url.startswith("duckdb"):
        import duckdb

        # The engine was disposed: a connection with another configuration only opens when no other is open.
        duckdb.connect(val_config.warehouse_url.removeprefix("duckdb:///"), read_only=True).close()


def test_each_broken_rule_is_reported(val_config):
    with _warehouse(val_config) as wh:
        load(wh, clean_frames())
        break_everything(wh)
    with pytest.raises(ValidationFailed) as caught:
        validate_warehouse(val_config, AS_OF)
    exc = caught.value
    assert exc.exit_code == ExitCode.VALIDATION and not exc.report.success
    message = str(exc)
    found = {(f.table, f.column, f.expectation) for f in exc.report.failures}
    for table, column, expectation in EXPECTED_DIRTY_FAILURES:
        assert (table, column, expectation) in found, f"{table}.{column} {expectation} not reported:\n{message}"
        line = next(
            line for line in message.splitlines() if line.strip().startswith(f"{table}.{column}: {expectation}")
        )
        assert "failed:" in line
    assert (
        "orders.total_amount: expect_column_values_to_be_between(min_value=0) failed: 1 unexpected value (e.g. -5.0)"
        in message
    )
    assert (
        "reviews.rating: expect_column_values_to_be_between(min_value=1, max_value=5) failed: 1 unexpected value "
        "(e.g. 7)" in message
    )
    assert "customer_id': 999" in message  # the orphan row itself is shown
    assert "missing column(s) title" in message
    assert "2026-01-01T00:00:00+00:00" in message  # the future timestamp
    # the dropped column's other rules are not repeated as noise
    assert [f.table for f in exc.report.failures].count("products") == 1
    assert Path(exc.report.data_docs_path).is_file()


def test_empty_orders_fails_through_the_cli(val_config, tmp_path, caplog):
    from pipelines.cli.main import main

    frames = clean_frames()
    frames["orders"] = frames["orders"].iloc[0:0]
    frames["order_items"] = frames["order_items"].iloc[0:0]
    frames["events"] = frames["events"].iloc[0:0]  # an empty clickstream alone is allowed
    frames["reviews"] = frames["reviews"].iloc[0:0]
    with _warehouse(val_config) as wh:
        load(wh, frames)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(val_config.model_dump(mode="json")))
    with caplog.at_level(logging.INFO):
        code = main(["--config", str(config_path), "validate", "--as-of", AS_OF.isoformat()])
    assert code == ExitCode.VALIDATION
    errors = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert "orders: expect_table_row_count_to_be_between(min_value=1) failed: observed 0" in errors
    assert "orders.ordered_at: unexpected_rows_expectation (freshness" in errors
    assert "events" not in errors and "reviews" not in errors


@pytest.mark.parametrize("warehouse_url_and_schema", ["duckdb"], indirect=True)
def test_cli_validates_selected_tables(val_config, tmp_path, caplog):
    from pipelines.cli.main import main

    with _warehouse(val_config) as wh:
        load(wh, clean_frames())
        wh.execute(wh.render("UPDATE {reviews} SET rating = 9"))  # broken, but not selected
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(val_config.model_dump(mode="json")))
    with caplog.at_level(logging.INFO):
        code = main(
            [
                "--config",
                str(config_path),
                "validate",
                "--as-of",
                "2025-12-31",
                "--table",
                "customers",
                "--table",
                "orders",
            ]
        )
    assert code == 0
    text = caplog.text
    assert "validation passed as of 2025-12-31" in text and "on 2 table(s)" in text
    assert str(Path(val_config.validation.data_docs_dir) / "index.html") in text
    assert (
        main(["--config", str(config_path), "validate", "--as-of", "2025-12-31", "--table", "nope"]) == ExitCode.CONFIG
    )


def test_nan_and_infinity_fail_validation_on_each_backend(val_config):
    """Range rules let NaN and +inf through (NaN sorts above every number); the finite rules catch them."""
    with _warehouse(val_config) as wh:
        load(wh, clean_frames())
        for table, column, key, value in (
            ("orders", "total_amount", "order_id = 10", "NaN"),
            ("orders", "total_amount", "order_id = 11", "Infinity"),
            ("order_items", "unit_price", "order_id = 10", "-Infinity"),
            ("products", "price", "product_id = 100", "NaN"),
        ):
            wh.execute(wh.render(f"UPDATE {{{table}}} SET {column} = CAST('{value}' AS DOUBLE PRECISION) WHERE {key}"))
    with pytest.raises(ValidationFailed) as caught:
        validate_warehouse(val_config, AS_OF)
    finite = {(f.table, f.column) for f in caught.value.report.failures if "finite:" in f.detail}
    assert finite == {("orders", "total_amount"), ("order_items", "unit_price"), ("products", "price")}
    message = str(caught.value)
    line = next(x for x in message.splitlines() if x.strip().startswith("orders.total_amount: unexpected_rows"))
    assert "finite" in line and "order_id" in line and ("inf" in line.lower() or "nan" in line.lower())
