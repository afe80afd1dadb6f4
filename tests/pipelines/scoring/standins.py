"""Test stand-ins shared by the scoring and monitoring tests.

- ``StandInPredictor`` is NOT the production model: a fixed logistic formula over two features,
  so the tests exercise *our* scoring/monitoring logic (streaming, validation, tiers, atomic writes,
  drift, backtest) in milliseconds. The real registered model is exercised end to end by the
  orchestration tests.
- ``tiny_raw_frames`` builds a small, reproducible warehouse (customers, orders, items, events,
  reviews) directly through ``Warehouse.bulk_load``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

SCORE_DATE = dt.date(2025, 3, 1)
PAST_DATE = SCORE_DATE - dt.timedelta(days=90)  # matured by SCORE_DATE with the default horizon


class StandInPredictor:
    """Stand-in ChurnPredictor (test double): p = sigmoid(-1.5 + 0.012 * recency - 0.25 * orders_90d)."""

    kind = "baseline"
    feature_names = ["days_since_last_order", "orders_90d"]

    def __init__(self, override=None):
        self.override = override  # callable(p) -> p, to simulate a broken model
        self.calls = 0

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        self.calls += 1
        x = frame[self.feature_names].astype("float64").fillna(0.0).to_numpy()
        p = 1.0 / (1.0 + np.exp(-(-1.5 + 0.012 * x[:, 0] - 0.25 * x[:, 1])))
        return self.override(p) if self.override is not None else p


def install_standin(monkeypatch, predictor: StandInPredictor | None = None) -> StandInPredictor:
    """Make ``pipelines.registry.load_model_version`` return the stand-in (records the requested options)."""
    import pipelines.registry

    predictor = predictor or StandInPredictor()
    predictor.loaded = []

    def load_model_version(config, version, **options):
        predictor.loaded.append((str(version), options))
        return predictor

    monkeypatch.setattr(pipelines.registry, "load_model_version", load_model_version)
    return predictor


def _ts(day: dt.date, seconds: np.ndarray) -> pd.Series:
    base = pd.Timestamp(day.isoformat(), tz="UTC")
    return base + pd.to_timedelta(seconds, unit="s")


def tiny_raw_frames(
    customers: int = 200, seed: int = 7, start: dt.date = dt.date(2023, 6, 1), end: dt.date = dt.date(2025, 6, 30)
) -> dict[str, pd.DataFrame]:
    """Small reproducible raw tables: each customer orders at a personal rate, some stop (churn)."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, customers + 1, dtype=np.int64)
    span = (end - start).days * 86_400
    signup = rng.integers(0, span // 3, customers)
    channels = np.array(["organic", "paid_search", "social", "referral", "email"])
    customers_df = pd.DataFrame(
        {
            "customer_id": ids,
            "signup_at": _ts(start, signup),
            "country": "DE",
            "acquisition_channel": channels[rng.integers(0, len(channels), customers)],
        }
    )
    orders, items, events = [], [], []
    order_id = event_id = 0
    for cid, t0 in zip(ids, signup, strict=True):
        rate = rng.uniform(2, 25) / (365 * 86_400)  # orders per second
        stop = t0 + rng.uniform(0.2, 1.5) * (span - t0)  # some customers stop ordering before the end
        t = t0
        while True:
            t += rng.exponential(1 / rate)
            if t >= min(stop, span):
                break
            order_id += 1
            status = rng.choice(["completed", "completed", "completed", "cancelled", "returned"])
            amount = float(np.round(rng.lognormal(3.5, 0.5), 2))
            orders.append((order_id, cid, int(t), status, amount))
            items.append((order_id, 1, None, rng.choice(["books", "shoes", "toys"]), 1, amount))
            if rng.random() < 0.5:
                event_id += 1
                events.append(
                    (event_id, cid, f"s{event_id}", rng.choice(["view", "search", "add_to_cart"]), None, int(t) - 600)
                )
    o = np.array(orders, dtype=object)
    e = np.array(events, dtype=object)
    return {
        "customers": customers_df,
        "products": pd.DataFrame({"product_id": [1], "title": ["thing"], "category": ["books"], "price": [10.0]}),
        "orders": pd.DataFrame(
            {
                "order_id": o[:, 0].astype(np.int64),
                "customer_id": o[:, 1].astype(np.int64),
                "ordered_at": _ts(start, o[:, 2].astype(np.int64)),
                "status": o[:, 3].astype(str),
                "total_amount": o[:, 4].astype(float),
            }
        ),
        "order_items": pd.DataFrame(
            items, columns=["order_id", "line_number", "product_id", "category", "quantity", "unit_price"]
        ),
        "events": pd.DataFrame(
            {
                "event_id": e[:, 0].astype(np.int64),
                "customer_id": e[:, 1].astype(np.int64),
                "session_id": e[:, 2].astype(str),
                "event_type": e[:, 3].astype(str),
                "product_id": None,
                "event_at": _ts(start, e[:, 5].astype(np.int64)),
            }
        ),
        "reviews": pd.DataFrame(
            {
                "review_id": [1, 2],
                "customer_id": [1, 2],
                "product_id": [1, 1],
                "rating": [5, 2],
                "review_text": ["fine", "late parcel"],
                "reviewed_at": _ts(start, np.array([86_400, 2 * 86_400])),
            }
        ),
    }


def load_tiny_warehouse(config, customers: int = 200, seed: int = 7) -> None:
    from pipelines.warehouse import open_warehouse

    frames = tiny_raw_frames(customers, seed)
    with open_warehouse(config) as wh:
        wh.init_schema()
        for table in ("customers", "products", "orders", "order_items", "events", "reviews"):
            wh.bulk_load(table, frames[table])


def current_reference(config, score_date: dt.date = SCORE_DATE) -> pd.DataFrame:
    """A reference sample identical to the current population (features + stand-in prediction)."""
    from pipelines.features import build_features
    from pipelines.warehouse import open_warehouse

    with open_warehouse(config) as wh:
        frame = build_features(wh, config, [score_date], labels=False)
    frame["prediction"] = StandInPredictor().predict_proba(frame)
    return frame
