"""Synthetic customers with a known churn signal, for smoke tests and speed benchmarks.

Why: model code must be testable and benchmarkable without the warehouse; the label depends on both a
numeric feature (recency) and words in the text view (angry reviews, support contacts), so a model that
reads either input beats random and one that reads both does best.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipelines.datasets import TrainingSets

FEATURES = ["days_since_last_order", "orders_90d", "spend_365d", "avg_review_score", "support_tickets_90d"]
_CATEGORIES = ["books", "electronics", "shoes", "toys", "garden", "beauty", "kitchen", "sports"]
_HAPPY = ["love it, fast delivery", "great quality, will buy again", "perfect fit", "arrived early, thanks"]
_ANGRY = [
    "terrible, arrived broken and nobody answers",
    "worst service ever, I want a refund",
    "parcel arrived late and damaged",
    "cheap quality, never again",
]


def customer_text(days_since_last: int, n_orders: int, angry: bool, support: bool, rng: np.random.Generator) -> str:
    """A text view in the platform's format (see ``pipelines.features.text_view``), newest first."""
    items: list[tuple[int, str]] = []
    day = days_since_last
    for _ in range(n_orders):
        cats = ", ".join(sorted(rng.choice(_CATEGORIES, int(rng.integers(1, 3)), replace=False)))
        status = "returned" if angry and rng.random() < 0.4 else "completed"
        items.append((day, f"[{day}d ago] order {rng.uniform(8, 180):.2f} {status}: {cats}"))
        day += int(rng.integers(5, 60))
    review_day = days_since_last + int(rng.integers(1, 20))
    review = f'review 1/5 "{rng.choice(_ANGRY)}"' if angry else f'review 5/5 "{rng.choice(_HAPPY)}"'
    items.append((review_day, f"[{review_day}d ago] {review}"))
    if support:
        items.append((review_day - 1, f"[{max(1, review_day - 1)}d ago] support contact x2"))
    if rng.random() < 0.3:
        d = int(rng.integers(1, 30))
        items.append((d, f"[{d}d ago] abandoned cart: {rng.choice(_CATEGORIES)}"))
    return " | ".join(text for _, text in sorted(items, key=lambda item: item[0]))


def make_customers(n: int, seed: int = 0, cutoff: dt.date = dt.date(2025, 6, 1), max_orders: int = 8) -> pd.DataFrame:
    """``n`` rows with the training-set columns; churn ~ recency + angry reviews / support contacts."""
    rng = np.random.default_rng(seed)
    days = rng.integers(1, 180, n)
    angry = rng.random(n) < 0.35
    support = rng.random(n) < 0.25
    n_orders = rng.integers(1, max_orders + 1, n)
    logit = -1.2 + 2.0 * (days - 90) / 60 + 1.8 * angry + 1.2 * support
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    review = np.where(angry, rng.uniform(1, 2.5, n), rng.uniform(3.5, 5, n))
    review[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype=np.int64),
            "cutoff_date": cutoff,
            "days_since_last_order": days.astype(np.float64),
            "orders_90d": np.maximum(0, n_orders - days // 45).astype(np.float64),
            "spend_365d": np.round(n_orders * rng.uniform(20, 90, n), 2),
            "avg_review_score": review,
            "support_tickets_90d": (support + rng.poisson(0.2, n)).astype(np.float64),
            "text_view": [
                customer_text(int(d), int(k), bool(a), bool(r), rng)
                for d, k, a, r in zip(days, n_orders, angry, support, strict=True)
            ],
            "tenure_band": rng.choice(["<6m", "6-24m", ">24m"], n),
            "acquisition_channel": rng.choice(["search", "social", "referral"], n),
            "churned": churned,
        }
    )


def make_sets(
    n_train: int = 300, n_val: int = 150, n_test: int = 150, seed: int = 0, max_orders: int = 8
) -> TrainingSets:
    """Real ``TrainingSets`` (no manifest file behind them) over synthetic customers."""
    return TrainingSets(
        train=make_customers(n_train, seed, max_orders=max_orders),
        validation=make_customers(n_val, seed + 1, max_orders=max_orders),
        test=make_customers(n_test, seed + 2, max_orders=max_orders),
        manifest={"feature_names": list(FEATURES)},
    )
