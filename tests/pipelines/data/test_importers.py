"""Importers for real exports: column detection and mapping, UTC parsing, all-or-nothing errors."""

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from pipelines.contract import ExitCode
from pipelines.data import importers
from pipelines.data.importers import (
    DataImportError,
    import_events,
    import_reviews,
    import_transactions,
    stable_id,
)

FIXTURES = Path(__file__).parent / "fixtures"
RAW = ("customers", "products", "orders", "order_items", "events", "reviews")


def _counts(wh) -> dict[str, int]:
    return {t: wh.row_count(t) for t in RAW}


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_purchase_log_alone_is_enough_on_each_backend(warehouse):
    report = import_transactions(warehouse, FIXTURES / "online_retail.csv", replace=True)
    assert report.rows_read == 7
    assert report.columns["customer_id"] == "CustomerID" and report.columns["order_id"] == "InvoiceNo"
    assert _counts(warehouse) == {
        "customers": 3,
        "products": 6,
        "orders": 5,
        "order_items": 7,
        "events": 0,
        "reviews": 0,
    }
    orders = warehouse.query_df(warehouse.render("SELECT * FROM {orders} ORDER BY order_id")).set_index("order_id")
    assert orders.loc[536365, "total_amount"] == pytest.approx(6 * 2.55 + 6 * 3.39)
    assert set(orders["status"]) == {"completed"}
    # "+01:00" converted to UTC; naive taken as UTC
    assert pd.Timestamp(orders.loc[536368, "ordered_at"]) == _utc("2024-12-01 07:34")
    assert pd.Timestamp(orders.loc[536365, "ordered_at"]) == _utc("2024-12-01 08:26")
    customers = warehouse.query_df(warehouse.render("SELECT * FROM {customers}")).set_index("customer_id")
    assert set(customers["acquisition_channel"]) == {"unknown"}
    assert customers.loc[stable_id("C-12583"), "country"] == "France"  # non-numeric id -> stable integer
    assert pd.Timestamp(customers.loc[13047, "signup_at"]) == _utc("2024-12-01 07:34")  # first seen
    products = warehouse.query_df(warehouse.render("SELECT * FROM {products}")).set_index("product_id")
    assert products.loc[71053, "title"] == "WHITE METAL LANTERN"
    assert products.loc[stable_id("85123A"), "price"] == pytest.approx(2.55)


def test_bad_rows_are_all_listed_and_nothing_is_written_on_each_backend(warehouse):
    import_transactions(warehouse, FIXTURES / "online_retail.csv", replace=True)
    before = _counts(warehouse)
    with pytest.raises(DataImportError) as err:
        import_transactions(warehouse, FIXTURES / "bad_transactions.csv", replace=True)
    message = str(err.value)
    assert err.value.exit_code == ExitCode.IMPORT
    assert "5 of 7 rows" in message and "nothing was written" in message
    for expected in (
        "row 2: amount 'abc' is not a number",
        "row 3: timestamp 'not a date' is not a date/time",
        "row 4: customer_id is empty",
        "row 5: amount '-3.00' is below 0",
        "row 6: quantity '1.5' is not a whole number",
    ):
        assert expected in message
    assert "row 1:" not in message and "row 7:" not in message
    assert _counts(warehouse) == before  # --replace did not clear anything either


def test_parquet_with_typed_columns_status_and_categories(tmp_path, warehouse_url_and_schema):
    from pipelines.warehouse import connect

    berlin = pd.Timestamp("2025-06-01 12:00", tz="Europe/Berlin")
    frame = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3],
            "order_id": [10, 10, 11, 12],
            "timestamp": [berlin, berlin, berlin + pd.Timedelta(days=1), berlin + pd.Timedelta(days=2)],
            "amount": [10.0, 5.5, 20.0, 7.25],
            "quantity": [2, 1, 1, 1],
            "product_id": ["SKU-1", "SKU-2", "SKU-1", "SKU-3"],
            "category": ["books", "toys", "books", "beauty"],
            "status": ["Delivered", "Delivered", "refunded", "canceled"],
        }
    )
    path = tmp_path / "sales.parquet"
    frame.to_parquet(path)
    url, schema = warehouse_url_and_schema
    with connect(url, schema) as wh:  # a fresh warehouse: the importer creates the schema itself
        import_transactions(wh, path)
        orders = wh.query_df(wh.render("SELECT * FROM {orders} ORDER BY order_id"))
        items = wh.query_df(wh.render("SELECT * FROM {order_items} ORDER BY order_id, line_number"))
    assert orders["status"].tolist() == ["completed", "returned", "cancelled"]
    assert orders["total_amount"].tolist() == [15.5, 20.0, 7.25]
    assert pd.Timestamp(orders["ordered_at"].iloc[0]) == _utc("2025-06-01 10:00")
    assert items["category"].tolist() == ["books", "toys", "books", "beauty"]
    assert items["unit_price"].iloc[0] == pytest.approx(5.0)
    assert items["product_id"].iloc[0] == stable_id("SKU-1")


def test_mapped_columns_and_orders_grouped_by_customer_and_time(warehouse):
    report = import_transactions(
        warehouse,
        FIXTURES / "purchases_mapped.csv",
        {"customer_id": "user", "timestamp": "when", "amount": "paid", "category": "what"},
    )
    assert report.written["orders"] == 4  # u2's two lines at 09:00 are one order
    assert report.written["order_items"] == 5 and report.written["customers"] == 3
    totals = warehouse.query_df(
        warehouse.render("SELECT customer_id, SUM(total_amount) AS total FROM {orders} GROUP BY customer_id")
    )
    assert dict(zip(totals.customer_id, totals.total, strict=True))[stable_id("u2")] == pytest.approx(130.0)
    assert warehouse.row_count("order_items", "category = 'electronics'") == 1


def test_missing_or_wrongly_mapped_columns_explain_the_fix(tmp_path, warehouse):
    path = tmp_path / "p.csv"
    path.write_text("who,when\n1,2025-01-01\n")
    with pytest.raises(DataImportError, match=r"required column\(s\) not found: customer_id.*--map customer_id="):
        import_transactions(warehouse, path)
    with pytest.raises(DataImportError, match="need an amount column"):
        import_transactions(warehouse, path, {"customer_id": "who", "timestamp": "when"})
    with pytest.raises(DataImportError, match="unknown field"):
        import_transactions(warehouse, path, {"client": "who"})
    with pytest.raises(DataImportError, match="not in the file: amount=paid"):
        import_transactions(warehouse, path, {"customer_id": "who", "timestamp": "when", "amount": "paid"})


def test_appending_the_same_orders_twice_is_refused(warehouse):
    import_transactions(warehouse, FIXTURES / "online_retail.csv")
    with pytest.raises(DataImportError, match="already in the warehouse"):
        import_transactions(warehouse, FIXTURES / "online_retail.csv")
    assert warehouse.row_count("orders") == 5
    import_transactions(warehouse, FIXTURES / "online_retail.csv", replace=True)
    assert warehouse.row_count("orders") == 5


def test_events_names_are_mapped_and_sessions_cut_at_inactivity(warehouse):
    import_transactions(warehouse, FIXTURES / "online_retail.csv", replace=True)
    report = import_events(warehouse, FIXTURES / "events.csv")
    assert report.written == {"customers": 0, "events": 7}
    events = warehouse.query_df(warehouse.render("SELECT * FROM {events} ORDER BY event_id"))
    assert events["event_type"].tolist() == [
        "view",
        "search",
        "add_to_cart",
        "checkout",
        "view",
        "view",
        "support_contact",
    ]
    assert events.loc[events.customer_id == 17850, "session_id"].nunique() == 2  # 2 days apart
    assert events["product_id"].isna().sum() == 3


def test_unknown_event_names_are_listed_unless_mapped(warehouse):
    with pytest.raises(DataImportError) as err:
        import_events(warehouse, FIXTURES / "events_unknown.csv")
    assert "'wishlist_add' (2 rows)" in str(err.value) and "'share' (1 rows)" in str(err.value)
    assert "--event-map" in str(err.value)
    assert warehouse.row_count("events") == 0 and warehouse.row_count("customers") == 0
    import_events(warehouse, FIXTURES / "events_unknown.csv", event_map={"wishlist_add": "view", "share": "view"})
    assert warehouse.row_count("events", "event_type = 'view'") == 4
    with pytest.raises(DataImportError, match="is not one of"):
        import_events(warehouse, FIXTURES / "events_unknown.csv", event_map={"share": "like"})


def test_reviews_import_converts_time_and_creates_customers(warehouse):
    report = import_reviews(warehouse, FIXTURES / "reviews.csv")
    assert report.written == {"customers": 3, "reviews": 3}
    reviews = warehouse.query_df(warehouse.render("SELECT * FROM {reviews} ORDER BY review_id"))
    assert reviews["rating"].tolist() == [4, 2, 5]
    assert "probably my last order" in reviews["review_text"].iloc[0]
    assert pd.Timestamp(reviews["reviewed_at"].iloc[1]) == _utc("2024-12-12 08:00")
    assert pd.isna(reviews["review_text"].iloc[2]) and pd.isna(reviews["product_id"].iloc[2])
    assert warehouse.row_count("customers") == 3


def test_review_ratings_outside_one_to_five_are_rejected(tmp_path, warehouse):
    path = tmp_path / "r.csv"
    path.write_text("customer_id,rating,timestamp\n1,5,2025-01-01\n2,6,2025-01-01\n3,four,2025-01-01\n")
    with pytest.raises(DataImportError) as err:
        import_reviews(warehouse, path)
    assert "row 2: rating '6' is not between 1 and 5" in str(err.value)
    assert "row 3: rating 'four' is not a number" in str(err.value)
    assert warehouse.row_count("reviews") == 0


def test_large_files_are_read_in_chunks_with_progress(tmp_path, warehouse, monkeypatch, caplog):
    monkeypatch.setattr(importers, "READ_CHUNK_ROWS", 40)
    rows = [f"{i % 7},{dt.datetime(2025, 1, 1) + dt.timedelta(hours=i):%Y-%m-%d %H:%M},{i}.5" for i in range(100)]
    path = tmp_path / "big.csv"
    path.write_text("customer_id,timestamp,amount\n" + "\n".join(rows) + "\n")
    caplog.set_level("INFO", logger="pipelines.data.importers")
    report = import_transactions(warehouse, path)
    assert report.written["orders"] == 100 and report.written["customers"] == 7
    progress = [r.getMessage() for r in caplog.records if "rows parsed" in r.getMessage()]
    assert progress == ["big.csv: 40 rows parsed", "big.csv: 80 rows parsed", "big.csv: 100 rows parsed"]


def test_cli_import_with_map_and_exit_code(tmp_path, monkeypatch, capsys):
    from pipelines.cli.main import main

    monkeypatch.setenv("CHURN_WAREHOUSE_URL", f"duckdb:///{tmp_path}/cli.duckdb")
    rc = main(
        [
            "import",
            "transactions",
            str(FIXTURES / "purchases_mapped.csv"),
            "--map",
            "customer_id=user",
            "--map",
            "timestamp=when",
            "--map",
            "amount=paid",
            "--replace",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "5 rows read" in out and "orders" in out
    assert main(["import", "transactions", str(FIXTURES / "bad_transactions.csv")]) == 4
    assert (
        main(
            [
                "import",
                "events",
                str(FIXTURES / "events_unknown.csv"),
                "--event-map",
                "wishlist_add=view",
                "--event-map",
                "share=search",
            ]
        )
        == 0
    )
