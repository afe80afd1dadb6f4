"""What the retention policy knows about a scored customer on an action date (point in time).

One SQL statement (DuckDB and Postgres) joins the day's ``churn_scores`` partition with behaviour
before ``action_date`` 00:00 UTC (orders, discounts, support contacts, views, returns) and the
customer's retention contacts in the 30/90 days before. The same frame feeds eligibility, the
policy's features and CUPED's pre-period covariates, so the three can never disagree.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pipelines.warehouse import Warehouse

# Features of the uplift models (and CUPED covariates), in this order.
POLICY_FEATURES = (
    "churn_probability",
    "days_since_last_order",
    "orders_90d",
    "orders_365d",
    "revenue_365d",
    "aov",
    "deal_share",
    "support_180d",
    "views_90d",
    "contacts_90d",
)

_CONTEXT_SQL = """
WITH s AS (
    SELECT customer_id, churn_probability, risk_tier FROM {churn_scores} WHERE score_date = :action_date
), o AS (
    SELECT customer_id,
           COUNT(*) FILTER (WHERE status = 'completed' AND ordered_at >= :t90) AS orders_90d,
           COUNT(*) FILTER (WHERE status = 'completed') AS orders_365d,
           SUM(CASE WHEN status = 'completed' THEN total_amount ELSE 0 END) AS revenue_365d,
           MAX(CASE WHEN status = 'completed' THEN ordered_at END) AS last_order_at,
           MAX(CASE WHEN status = 'returned' THEN ordered_at END) AS last_return_at
    FROM {orders}
    WHERE ordered_at >= :t365 AND ordered_at < :t
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
), r AS (
    SELECT customer_id,
           COUNT(*) FILTER (WHERE action_date >= :d30) AS contacts_30d,
           COUNT(*) AS contacts_90d
    FROM {retention_actions}
    WHERE action <> 'none' AND action_date >= :d90 AND action_date < :action_date
    GROUP BY customer_id
)
SELECT s.customer_id, s.churn_probability, s.risk_tier,
       COALESCE(o.orders_90d, 0) AS orders_90d,
       COALESCE(o.orders_365d, 0) AS orders_365d,
       COALESCE(o.revenue_365d, 0) AS revenue_365d,
       o.last_order_at, o.last_return_at,
       COALESCE(d.deal_share, 0) AS deal_share,
       COALESCE(e.support_180d, 0) AS support_180d,
       COALESCE(e.views_90d, 0) AS views_90d,
       COALESCE(r.contacts_30d, 0) AS contacts_30d,
       COALESCE(r.contacts_90d, 0) AS contacts_90d
FROM s
LEFT JOIN o ON o.customer_id = s.customer_id
LEFT JOIN d ON d.customer_id = s.customer_id
LEFT JOIN e ON e.customer_id = s.customer_id
LEFT JOIN r ON r.customer_id = s.customer_id
ORDER BY s.customer_id
"""

NO_ORDER_DAYS = 365.0  # days_since_last_order of a customer without a completed order in the lookback


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def load_context(wh: Warehouse, action_date: dt.date) -> pd.DataFrame:
    """One row per customer scored on ``action_date``: score, tier, POLICY_FEATURES, return and contact history."""
    t = midnight(action_date)
    params = {
        "action_date": action_date,
        "t": t,
        **{f"t{d}": t - dt.timedelta(days=d) for d in (90, 180, 365)},
        "d30": action_date - dt.timedelta(days=30),
        "d90": action_date - dt.timedelta(days=90),
    }
    frame = wh.query_df(wh.render(_CONTEXT_SQL), params)
    now = pd.Timestamp(t)
    for col, out in (("last_order_at", "days_since_last_order"), ("last_return_at", "days_since_last_return")):
        stamps = pd.to_datetime(frame.pop(col), utc=True)
        frame[out] = ((now - stamps).dt.total_seconds() / 86_400).fillna(NO_ORDER_DAYS if "order" in out else np.inf)
    frame["aov"] = np.where(frame["orders_365d"] > 0, frame["revenue_365d"] / frame["orders_365d"].clip(lower=1), 0.0)
    for col in ("orders_90d", "orders_365d", "support_180d", "views_90d", "contacts_30d", "contacts_90d"):
        frame[col] = frame[col].astype(np.int64)
    for col in ("churn_probability", "revenue_365d", "deal_share"):
        frame[col] = frame[col].astype(np.float64)
    return frame


def load_consent(wh: Warehouse, customer_ids: np.ndarray, channels: list[str], default: bool) -> pd.DataFrame:
    """Consent per customer (rows) and channel (columns); customers without a row get ``default``."""
    out = pd.DataFrame(default, index=pd.Index(customer_ids, name="customer_id"), columns=channels)
    if not channels:
        return out
    rows = wh.query_df(wh.render("SELECT customer_id, channel, consented FROM {contact_consent}"))
    rows = rows[rows["channel"].isin(channels) & rows["customer_id"].isin(customer_ids)]
    for channel, group in rows.groupby("channel"):
        out.loc[group["customer_id"].to_numpy(), channel] = group["consented"].astype(bool).to_numpy()
    return out
