"""Synthetic text views in the platform's format, for the training-throughput stage."""

from __future__ import annotations

import numpy as np

_CATEGORIES = ("books", "electronics", "shoes", "toys", "garden", "beauty", "sports", "kitchen", "fashion", "grocery")
_REVIEWS = (
    "parcel arrived late and damaged",
    "great quality, will buy again",
    "size runs small",
    "customer service never answered",
    "exactly as described",
    "cheap material, returned it",
)


def synthetic_frame(n: int, seed: int = 0, items: tuple[int, int] = (2, 14)):
    """Text views in the platform's format (newest first), for when real features are not available.

    ``items`` bounds the number of history items per customer; (2, 14) gives ~25-180 tokens.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(n):
        day, parts = 0, []
        for _ in range(int(rng.integers(items[0], items[1] + 1))):
            day += int(rng.integers(1, 40))
            kind = rng.random()
            if kind < 0.6:
                cats = ", ".join(sorted(set(rng.choice(_CATEGORIES, size=int(rng.integers(1, 4))))))
                status = rng.choice(["completed", "completed", "completed", "cancelled", "returned"])
                parts.append(f"[{day}d ago] order {rng.uniform(5, 300):.2f} {status}: {cats}")
            elif kind < 0.8:
                parts.append(f'[{day}d ago] review {int(rng.integers(1, 6))}/5 "{rng.choice(_REVIEWS)}"')
            else:
                parts.append(
                    f"[{day}d ago] " + rng.choice(["support contact", f"abandoned cart: {rng.choice(_CATEGORIES)}"])
                )
        texts.append(" | ".join(parts))
    frame = pd.DataFrame({"customer_id": np.arange(1, n + 1, dtype=np.int64), "text_view": texts})
    for i, name in enumerate(("recency_days", "orders_90d", "spend_365d", "returns_365d")):
        frame[name] = rng.gamma(2.0, 10.0 * (i + 1), size=n)
    return frame
