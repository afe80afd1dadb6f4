"""Tiny, clean raw tables (as of 2025-12-31) and helpers to break them one rule at a time."""

from __future__ import annotations

import datetime as dt

import pandas as pd

AS_OF = dt.date(2025, 12, 31)


def ts(value: str) -> pd.Timestamp:
    return pd.Timestamp(value, tz="UTC")


def clean_frames() -> dict[str, pd.DataFrame]:
    return {
        "customers": pd.DataFrame(
            {
                "customer_id": [1, 2, 3],
                "signup_at": [ts("2024-01-05"), ts("2024-06-01 12:30"), ts("2025-03-10")],
                "country": ["DE", "FR", "NL"],
                "acquisition_channel": ["organic", "paid_search", "referral"],
                "birth_year": [1980, None, 1999],
                "gender": ["f", None, "m"],
            }
        ),
        "products": pd.DataFrame(
            {
                "product_id": [100, 101],
                "title": ["Trail shoe", "Rain jacket"],
                "category": ["shoes", "outerwear"],
                "price": [89.0, 120.0],
                "description": ["Light trail shoe", None],
            }
        ),
        "orders": pd.DataFrame(
            {
                "order_id": [10, 11, 12, 13],
                "customer_id": [1, 1, 2, 3],
                "ordered_at": [ts("2025-06-01"), ts("2025-12-20 08:00"), ts("2025-11-02"), ts("2025-12-31 23:59:59")],
                "status": ["completed", "completed", "returned", "cancelled"],
                "total_amount": [89.0, 209.0, 0.0, 120.0],
            }
        ),
        "order_items": pd.DataFrame(
            {
                "order_id": [10, 11, 11, 12, 13],
                "line_number": [1, 1, 2, 1, 1],
                "product_id": [100, 100, 101, None, 101],
                "category": ["shoes", "shoes", "outerwear", None, "outerwear"],
                "quantity": [1, 1, 1, 2, 1],
                "unit_price": [89.0, 89.0, 120.0, 0.0, 120.0],
            }
        ),
        "events": pd.DataFrame(
            {
                "event_id": [1, 2, 3],
                "customer_id": [1, 2, 3],
                "session_id": ["s1", "s2", "s3"],
                "event_type": ["view", "add_to_cart", "support_contact"],
                "product_id": [100, None, None],
                "event_at": [ts("2025-12-19"), ts("2025-12-30"), ts("2025-10-01")],
            }
        ),
        "reviews": pd.DataFrame(
            {
                "review_id": [1, 2],
                "customer_id": [1, 2],
                "product_id": [100, 101],
                "rating": [5, 1],
                "review_text": ["Great grip", None],
                "reviewed_at": [ts("2025-07-01"), ts("2025-12-01")],
            }
        ),
    }


def load(wh, frames: dict[str, pd.DataFrame]) -> None:
    wh.init_schema()
    for table, frame in frames.items():
        if len(frame):
            wh.bulk_load(table, frame)


def break_everything(wh) -> None:
    """One independent defect per rule the tests assert (each in its own table or row)."""
    wh.bulk_load("customers", clean_frames()["customers"].iloc[[1]])  # duplicate customer_id 2
    wh.execute(wh.render("ALTER TABLE {order_items} ALTER COLUMN order_id DROP NOT NULL"))
    wh.execute(
        wh.render("INSERT INTO {order_items} (order_id, line_number, quantity, unit_price) VALUES (NULL, 1, 1, 5.0)")
    )  # null key
    wh.bulk_load(
        "orders",
        pd.DataFrame(
            {  # negative amount; orphan customer 999
                "order_id": [20, 21],
                "customer_id": [1, 999],
                "ordered_at": [ts("2025-12-01"), ts("2025-12-02")],
                "status": ["completed", "completed"],
                "total_amount": [-5.0, 10.0],
            }
        ),
    )
    wh.bulk_load(
        "reviews",
        pd.DataFrame(
            {  # rating 7
                "review_id": [3],
                "customer_id": [3],
                "product_id": [100],
                "rating": [7],
                "review_text": ["10/10"],
                "reviewed_at": [ts("2025-12-05")],
            }
        ),
    )
    wh.bulk_load(
        "events",
        pd.DataFrame(
            {  # the day after as-of
                "event_id": [4],
                "customer_id": [1],
                "session_id": ["s9"],
                "event_type": ["view"],
                "product_id": [None],
                "event_at": [ts("2026-01-01 00:00:00")],
            }
        ),
    )
    wh.execute(wh.render("ALTER TABLE {products} DROP COLUMN title"))  # missing column


# (table, column, expectation) each defect above must be reported as
EXPECTED_DIRTY_FAILURES = [
    ("customers", "customer_id", "expect_column_values_to_be_unique"),
    ("order_items", "order_id", "expect_column_values_to_not_be_null"),
    ("orders", "total_amount", "expect_column_values_to_be_between"),
    ("orders", "customer_id", "unexpected_rows_expectation"),
    ("reviews", "rating", "expect_column_values_to_be_between"),
    ("events", "event_at", "expect_column_values_to_be_between"),
    ("products", "title", "expect_table_columns_to_match_set"),
]
