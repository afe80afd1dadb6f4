"""A simulated future for retention campaigns, with known (ground-truth) effects per action.

Why: an uplift estimate or an off-policy value can only be checked against a world whose true
effects are known (EconML's and causalml's examples start the same way). After a day's assignments
this module plays out the next ``horizon_days``: each assigned customer orders (once) with a
probability that depends on who they are and on the action they got, and the orders are written to
the warehouse, so the platform's outcome job measures them like any real order.

The true effects (additive on the probability of ordering within the horizon):

- ``coupon``: deal seekers (>= 30% of their items bought at a discount) +0.20, others +0.02;
- ``outreach``: customers with a support contact in the last 180 days +0.18, others 0;
- ``recommendation``: browsers (views in 90 days >= 3 x (orders + 1)) +0.10, others +0.01;
- any contact puts off heavy buyers (>= 8 orders in 365 days): -0.05;
- any other action name: no effect.

The baseline probability falls with recency and rises with frequency. Everything the truth uses is
observable in the warehouse before the action date, so a good uplift model can learn it; the draws
are seeded by ``(seed, action_date)``, so a rerun writes the same orders (idempotent: the day's
simulated orders are replaced, identified by their reserved order-id range).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipelines.contract import ORDERS

if TYPE_CHECKING:
    from pipelines.warehouse import Warehouse

logger = logging.getLogger(__name__)

# Simulated orders get ids in a reserved range per action date: never clashes with generated or imported ids.
SIM_ORDER_ID_BASE = 8_000_000_000_000_000
SIM_IDS_PER_DAY = 10_000_000
DEAL_SHARE = 0.3
HEAVY_BUYER_ORDERS = 8

_TRAITS_SQL = """
WITH o AS (
    SELECT customer_id,
           COUNT(*) FILTER (WHERE ordered_at >= :t90) AS orders_90d,
           COUNT(*) AS orders_365d,
           MAX(ordered_at) AS last_order_at,
           AVG(total_amount) AS aov
    FROM {orders}
    WHERE status = 'completed' AND ordered_at >= :t365 AND ordered_at < :t
    GROUP BY customer_id
), d AS (
    SELECT o.customer_id,
           AVG(CASE WHEN p.price > 0 AND i.unit_price < 0.9 * p.price THEN 1.0 ELSE 0.0 END) AS deal_share
    FROM {orders} o
    JOIN {order_items} i ON i.order_id = o.order_id
    JOIN {products} p ON p.product_id = i.product_id
    WHERE o.status = 'completed' AND o.ordered_at >= :t365 AND o.ordered_at < :t
    GROUP BY o.customer_id
), e AS (
    SELECT customer_id,
           COUNT(*) FILTER (WHERE event_type = 'support_contact' AND event_at >= :t180) AS support_180d,
           COUNT(*) FILTER (WHERE event_type = 'view' AND event_at >= :t90) AS views_90d
    FROM {events}
    WHERE event_at >= :t180 AND event_at < :t
    GROUP BY customer_id
)
SELECT c.customer_id,
       COALESCE(o.orders_90d, 0) AS orders_90d,
       COALESCE(o.orders_365d, 0) AS orders_365d,
       o.last_order_at,
       COALESCE(o.aov, 0) AS aov,
       COALESCE(d.deal_share, 0) AS deal_share,
       COALESCE(e.support_180d, 0) AS support_180d,
       COALESCE(e.views_90d, 0) AS views_90d
FROM {customers} c
LEFT JOIN o ON o.customer_id = c.customer_id
LEFT JOIN d ON d.customer_id = c.customer_id
LEFT JOIN e ON e.customer_id = c.customer_id
"""


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def customer_traits(wh: Warehouse, as_of: dt.date) -> pd.DataFrame:
    """What the simulated world knows about each customer, from rows before ``as_of`` 00:00 UTC."""
    t = _midnight(as_of)
    params = {"t": t, **{f"t{d}": t - dt.timedelta(days=d) for d in (90, 180, 365)}}
    frame = wh.query_df(wh.render(_TRAITS_SQL), params)
    last = pd.to_datetime(frame.pop("last_order_at"), utc=True)
    frame["days_since_last_order"] = ((pd.Timestamp(t) - last).dt.total_seconds() / 86_400).fillna(365.0)
    for col in ("orders_90d", "orders_365d", "support_180d", "views_90d"):
        frame[col] = frame[col].astype(np.int64)
    return frame


def true_effects(traits: pd.DataFrame, actions: list[str]) -> pd.DataFrame:
    """Per customer: ``p_<action>`` (true P(order within the horizon | action)) and ``order_value``."""
    logit = (
        -0.6
        + 0.8 * np.log1p(traits["orders_90d"])
        + 0.4 * np.log1p(traits["orders_365d"])
        - traits["days_since_last_order"] / 60.0
    )
    p0 = 1.0 / (1.0 + np.exp(-logit.to_numpy(dtype=float)))
    deal = traits["deal_share"].to_numpy() >= DEAL_SHARE
    complainer = traits["support_180d"].to_numpy() >= 1
    browser = traits["views_90d"].to_numpy() >= 3 * (traits["orders_90d"].to_numpy() + 1)
    averse = traits["orders_365d"].to_numpy() >= HEAVY_BUYER_ORDERS
    effect = {
        "coupon": np.where(deal, 0.20, 0.02),
        "outreach": np.where(complainer, 0.18, 0.0),
        "recommendation": np.where(browser, 0.10, 0.01),
    }
    out = pd.DataFrame({"customer_id": traits["customer_id"].to_numpy()})
    for action in actions:
        if action == "none":
            out["p_none"] = p0
            continue
        tau = effect.get(action, np.zeros(len(p0))) - 0.05 * averse
        out[f"p_{action}"] = np.clip(p0 + tau, 0.01, 0.99)
    out["p_none"] = p0
    out["order_value"] = np.where(traits["aov"].to_numpy() > 0, traits["aov"].to_numpy(), 40.0)
    return out


def play_out(
    wh: Warehouse,
    assignments: pd.DataFrame,
    action_date: dt.date,
    horizon_days: int,
    *,
    seed: int = 0,
    actions: list[str] | None = None,
) -> pd.DataFrame:
    """Write the orders the assigned customers place in ``[action_date, action_date + horizon_days)``.

    ``assignments`` holds ``customer_id`` and ``action``. Returns the ground truth per assigned customer
    (``p_<action>`` for every action, ``order_value``, the ``action`` taken and whether they ``ordered``).
    Replaces the orders an earlier call simulated for the same date.
    """
    actions = actions or sorted(set(assignments["action"]) | {"none"})
    traits = customer_traits(wh, action_date)
    truth = true_effects(traits, actions)
    truth = assignments[["customer_id", "action"]].merge(truth, on="customer_id", how="left")
    if truth["p_none"].isna().any():
        missing = truth.loc[truth["p_none"].isna(), "customer_id"].head(5).tolist()
        raise ValueError(f"play_out: assigned customers not in customers table, e.g. {missing}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(action_date.toordinal(),)))
    p_taken = np.choose(
        truth["action"].map({a: i for i, a in enumerate(actions)}).to_numpy(),
        [truth[f"p_{a}"].to_numpy() for a in actions],
    )
    truth["ordered"] = rng.random(len(truth)) < p_taken
    buyers = truth[truth["ordered"]]
    start = _midnight(action_date)
    offsets = np.floor(rng.random(len(buyers)) * horizon_days * 86_400)  # whole seconds (microsecond storage)
    first_id = SIM_ORDER_ID_BASE + action_date.toordinal() * SIM_IDS_PER_DAY
    orders = pd.DataFrame(
        {
            "order_id": first_id + np.arange(len(buyers), dtype=np.int64),
            "customer_id": buyers["customer_id"].to_numpy(dtype=np.int64),
            "ordered_at": pd.Timestamp(start) + pd.to_timedelta(offsets, unit="s"),
            "status": "completed",
            "total_amount": np.round(buyers["order_value"].to_numpy() * rng.lognormal(0.0, 0.25, len(buyers)), 2),
        }
    )
    with wh.transaction():
        wh.execute(
            wh.render("DELETE FROM {orders} WHERE order_id >= :lo AND order_id < :hi"),
            {"lo": first_id, "hi": first_id + SIM_IDS_PER_DAY},
        )
        if len(orders):
            wh.bulk_load(ORDERS, orders)
    logger.info(
        "simulated %s + %d days: %d of %d assigned customers ordered",
        action_date,
        horizon_days,
        len(orders),
        len(truth),
    )
    return truth
