"""forget-customer: one customer's rows leave every warehouse table, nobody else's do."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipelines.contract import ID_COLUMN, TABLES
from pipelines.warehouse.forget import customer_tables, forget_customer, remaining_rows


def _seed(wh) -> None:
    ts = pd.Timestamp("2025-01-01", tz="UTC")
    wh.bulk_load(
        "customers",
        pd.DataFrame(
            {"customer_id": [1, 2], "signup_at": [ts, ts], "country": ["DE", "FR"], "acquisition_channel": ["x", "y"]}
        ),
    )
    wh.bulk_load("products", pd.DataFrame({"product_id": [7], "title": ["t"], "category": ["c"], "price": [1.0]}))
    wh.bulk_load(
        "orders",
        pd.DataFrame(
            {
                "order_id": [10, 11, 20],
                "customer_id": [1, 1, 2],
                "ordered_at": [ts] * 3,
                "status": ["completed"] * 3,
                "total_amount": [5.0] * 3,
            }
        ),
    )
    wh.bulk_load(
        "order_items",
        pd.DataFrame(
            {
                "order_id": [10, 11, 20],
                "line_number": [1, 1, 1],
                "category": ["c"] * 3,
                "quantity": [1] * 3,
                "unit_price": [5.0] * 3,
            }
        ),
    )
    wh.bulk_load(
        "events",
        pd.DataFrame(
            {
                "event_id": [1, 2],
                "customer_id": [1, 2],
                "session_id": ["a", "b"],
                "event_type": ["view"] * 2,
                "event_at": [ts] * 2,
            }
        ),
    )
    wh.bulk_load(
        "reviews",
        pd.DataFrame(
            {
                "review_id": [1, 2],
                "customer_id": [1, 2],
                "rating": [2, 5],
                "review_text": ["bad", "ok"],
                "reviewed_at": [ts] * 2,
            }
        ),
    )
    day = dt.date(2025, 2, 1)
    wh.replace_partition(
        "churn_scores",
        pd.DataFrame(
            {
                "customer_id": [1, 2],
                "score_date": [day] * 2,
                "churn_probability": [0.9, 0.1],
                "risk_tier": ["high", "low"],
                "model_name": ["m"] * 2,
                "model_version": ["1"] * 2,
                "run_id": ["r"] * 2,
                "scored_at": [ts] * 2,
            }
        ),
        "score_date",
        day,
    )
    wh.replace_partition(
        "churn_score_reasons",
        pd.DataFrame(
            {
                "score_date": [day] * 2,
                "customer_id": [1, 1],
                "rank": [1, 2],
                "reason_code": ["recency"] * 2,
                "feature": ["f"] * 2,
                "value": [1.0, 2.0],
                "contribution": [0.5, 0.2],
                "text": ["t"] * 2,
            }
        ),
        "score_date",
        day,
    )
    wh.replace_partition(
        "customer_segments",
        pd.DataFrame(
            {"score_date": [day] * 2, "customer_id": [1, 2], "segment_id": [0, 1], "segment_name": ["a", "b"]}
        ),
        "score_date",
        day,
    )


def test_every_table_with_customer_rows_is_covered():
    names = {t.name for t in customer_tables()}
    assert names == {t.name for t in TABLES.values() if ID_COLUMN in t.column_names}
    assert {
        "customers",
        "orders",
        "events",
        "reviews",
        "churn_scores",
        "churn_score_reasons",
        "customer_segments",
    } <= names
    assert customer_tables()[-1].name == "customers"  # deleted last (referenced by the others)


def test_forget_customer_leaves_nothing_of_them_and_everything_of_others(warehouse):
    _seed(warehouse)
    deleted = forget_customer(warehouse, 1)
    assert deleted["orders"] == 2 and deleted["order_items"] == 2 and deleted["churn_score_reasons"] == 2
    assert deleted["customers"] == deleted["events"] == deleted["reviews"] == deleted["churn_scores"] == 1
    assert set(remaining_rows(warehouse, 1).values()) == {0}
    items = warehouse.query_df(warehouse.render("SELECT order_id FROM {order_items} ORDER BY order_id"))
    assert items["order_id"].tolist() == [20]
    # the other customer is untouched, in every table
    left = remaining_rows(warehouse, 2)
    seeded = ("customers", "orders", "events", "reviews", "churn_scores", "customer_segments")
    assert [left[t] for t in seeded] == [1] * len(seeded)
    assert forget_customer(warehouse, 1) == dict.fromkeys(deleted, 0)  # idempotent


def test_cli_forget_customer(backend_config, tmp_path, capsys):
    import yaml

    from pipelines.cli.main import main
    from pipelines.warehouse import open_warehouse

    with open_warehouse(backend_config) as wh:
        wh.init_schema()
        _seed(wh)
    path = tmp_path / "forget.yaml"
    path.write_text(yaml.safe_dump(backend_config.model_dump(mode="json")))
    assert main(["--config", str(path), "forget-customer", "1"]) == 0
    assert "no rows left" in capsys.readouterr().out
    with open_warehouse(backend_config) as wh:
        assert set(remaining_rows(wh, 1).values()) == {0}
        assert remaining_rows(wh, 2)["customers"] == 1
