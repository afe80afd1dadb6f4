"""Hand-made warehouse rows at known times around the cutoff 2025-03-01 (00:00 UTC), as fixtures."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pandas as pd
import pytest

CUTOFF = dt.date(2025, 3, 1)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


CUSTOMERS = pd.DataFrame(
    {
        "customer_id": [1, 2, 3, 4, 5, 6],
        "signup_at": [
            ts("2024-03-01"),
            ts("2023-01-01"),
            ts("2025-01-15"),
            ts("2022-06-01"),
            ts("2024-12-15"),
            ts("2023-09-01"),
        ],
        "country": ["DE"] * 6,
        "acquisition_channel": ["paid_search", "organic", "social", "referral", "email", "organic"],
    }
)

PRODUCTS = pd.DataFrame(
    {
        "product_id": [10, 11, 12],
        "title": ["sneaker", "phone", "novel"],
        "category": ["shoes", "electronics", "books"],
        "price": [50.0, 300.0, 12.0],
    }
)

# (order_id, customer_id, ordered_at, status, total_amount, [item categories])
ORDERS = [
    # customer 1: the hand-computed one (no completed order in the horizon: churned = 1)
    (101, 1, "2024-06-15 10:00", "completed", 100.00, ["books"]),
    (102, 1, "2024-11-20 18:00", "completed", 40.00, ["toys", "books"]),
    (103, 1, "2025-01-02 10:00", "completed", 35.50, ["toys"]),
    (104, 1, "2025-01-20 11:00", "cancelled", 15.00, ["toys"]),
    (105, 1, "2025-02-10 12:00", "returned", 20.00, ["shoes"]),
    (106, 1, "2025-02-23 09:00", "completed", 54.90, ["electronics", "books"]),
    # customer 2: only order older than the 365-day lookback -> not in the population
    (201, 2, "2024-02-20 10:00", "completed", 80.00, ["books"]),
    # customer 3: orders again inside the horizon -> churned = 0
    (301, 3, "2025-02-01 10:00", "completed", 25.00, ["books"]),
    (302, 3, "2025-04-15 10:00", "completed", 30.00, ["books"]),
    # customer 4: next completed order exactly at cutoff + 90 days (outside), a cancelled one inside -> churned = 1
    (401, 4, "2025-01-10 10:00", "completed", 60.00, ["shoes"]),
    (402, 4, "2025-05-29 23:59", "cancelled", 60.00, ["shoes"]),
    (403, 4, "2025-05-30 00:00", "completed", 60.00, ["shoes"]),
    # customer 5: completed one second before the cutoff -> in the population, recency 1 s
    (501, 5, "2025-02-28 23:59:59", "completed", 10.00, ["toys"]),
    # customer 6: completed order exactly at the cutoff instant: not a feature, but a label (churned = 0)
    (601, 6, "2024-12-01 10:00", "completed", 45.00, ["shoes"]),
    (602, 6, "2025-03-01 00:00", "completed", 45.00, ["shoes"]),
]

# (event_id, customer_id, session_id, event_type, product_id, event_at)
EVENTS = [
    (1, 1, "s1-old", "view", None, "2024-12-01 10:00"),
    (2, 1, "s1-buy", "search", None, "2025-02-23 08:50"),
    (3, 1, "s1-buy", "add_to_cart", 11, "2025-02-23 08:55"),
    (4, 1, "s1-buy", "checkout", None, "2025-02-23 09:00"),
    (5, 1, "s1-help", "support_contact", None, "2025-02-26 15:00"),
    (6, 1, "s1-cart", "view", 10, "2025-02-28 20:00"),
    (7, 1, "s1-cart", "add_to_cart", 10, "2025-02-28 20:05"),
    (8, 3, "s3-a", "search", None, "2025-01-31 09:00"),
    (9, 3, "s3-a", "search", None, "2025-01-31 09:01"),
]

# (review_id, customer_id, product_id, rating, review_text, reviewed_at)
REVIEWS = [
    (1, 1, 12, 5, "great read", "2024-08-01 10:00"),
    (2, 1, 11, 2, "parcel arrived late and damaged", "2025-02-25 10:00"),
    (3, 3, 12, 4, None, "2025-02-05 10:00"),
]

# (review_id, sentiment, disagrees): review 2 (2 stars) reads positive to the head, review 3 has no text
SENTIMENT = [(1, 0.8, False), (2, 0.6, True), (3, None, None)]


def frames(orders=ORDERS, events=EVENTS, reviews=REVIEWS, sentiment=SENTIMENT) -> dict[str, pd.DataFrame]:
    items = [
        {
            "order_id": oid,
            "line_number": n,
            "product_id": None,
            "category": cat,
            "quantity": 1,
            "unit_price": amount / len(cats),
        }
        for oid, _cid, _at, _status, amount, cats in orders
        for n, cat in enumerate(cats, start=1)
    ]
    return {
        "customers": CUSTOMERS,
        "products": PRODUCTS,
        "orders": pd.DataFrame(
            [
                {"order_id": o, "customer_id": c, "ordered_at": ts(at), "status": s, "total_amount": a}
                for o, c, at, s, a, _ in orders
            ]
        ),
        "order_items": pd.DataFrame(items),
        "events": pd.DataFrame(
            [
                {"event_id": e, "customer_id": c, "session_id": s, "event_type": t, "product_id": p, "event_at": ts(at)}
                for e, c, s, t, p, at in events
            ]
        ),
        "reviews": pd.DataFrame(
            [
                {
                    "review_id": r,
                    "customer_id": c,
                    "product_id": p,
                    "rating": g,
                    "review_text": x,
                    "reviewed_at": ts(at),
                }
                for r, c, p, g, x, at in reviews
            ]
        ),
        "review_sentiment": pd.DataFrame(
            [
                {
                    "review_id": r,
                    "customer_id": c,
                    "reviewed_at": ts(at),
                    "rating": g,
                    "sentiment": scored[r][0],
                    "disagrees": scored[r][1],
                    "computed_at": ts("2025-06-01 00:00"),
                    "head_id": "test",
                }
                for scored in [{r: (v, d) for r, v, d in sentiment}]
                for r, c, _p, g, _x, at in reviews
                if r in scored
            ]
        ),
    }


def load(warehouse, data: dict[str, pd.DataFrame]) -> None:
    for table in ("customers", "products", "orders", "order_items", "events", "reviews", "review_sentiment"):
        warehouse.bulk_load(table, data[table])


@pytest.fixture
def rows() -> SimpleNamespace:
    """The hand-made rows and helpers (test modules are not importable under --import-mode=importlib)."""
    return SimpleNamespace(
        CUTOFF=CUTOFF, ORDERS=ORDERS, EVENTS=EVENTS, REVIEWS=REVIEWS, SENTIMENT=SENTIMENT, frames=frames, load=load
    )


@pytest.fixture
def loaded(warehouse):
    """The warehouse fixture (each backend) holding the hand-made rows."""
    load(warehouse, frames())
    return warehouse
