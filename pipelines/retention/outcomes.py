"""Outcomes of past assignments, once (and only once) their horizon has passed.

An assignment made on ``d`` is measured by a run on ``as_of`` only when ``d + horizon_days <= as_of``:
before that, orders still to come would count as churn. Retained = a completed order in
``[d, d + horizon)`` (UTC days); revenue is that window's completed order value, margin
``revenue x margin_rate``, cost = contact cost (any action but ``none``) + redemption cost when retained
(a coupon's discount is paid also on orders that would have happened anyway).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipelines.contract import RETENTION_OUTCOMES
from pipelines.dates import as_date
from pipelines.retention.context import midnight

if TYPE_CHECKING:
    from pipelines.config import Config
    from pipelines.warehouse import Warehouse

logger = logging.getLogger(__name__)

_OUTCOME_SQL = """
SELECT a.customer_id, a.action_date, a.action, a."group",
       COUNT(o.order_id) AS orders, COALESCE(SUM(o.total_amount), 0) AS revenue
FROM {retention_actions} a
LEFT JOIN {orders} o
       ON o.customer_id = a.customer_id AND o.status = 'completed'
      AND o.ordered_at >= :start AND o.ordered_at < :end
WHERE a.action_date = :action_date
GROUP BY a.customer_id, a.action_date, a.action, a."group"
ORDER BY a.customer_id
"""


def matured_action_dates(wh: Warehouse, config: Config, as_of: dt.date, *, remeasure: bool = False) -> list[dt.date]:
    """Action dates whose horizon has passed by ``as_of`` (and, unless ``remeasure``, not measured yet)."""
    latest = as_of - dt.timedelta(days=config.retention.horizon_days)
    sql = "SELECT DISTINCT a.action_date FROM {retention_actions} a WHERE a.action_date <= :latest"
    if not remeasure:
        sql += " AND NOT EXISTS (SELECT 1 FROM {retention_outcomes} r WHERE r.action_date = a.action_date)"
    frame = wh.query_df(wh.render(sql + " ORDER BY 1"), {"latest": latest})
    return [as_date(v) for v in frame.iloc[:, 0].tolist()]


def outcome_frame(wh: Warehouse, config: Config, action_date: dt.date, as_of: dt.date) -> pd.DataFrame:
    """RETENTION_OUTCOMES rows of one matured action date; refuses a date whose horizon has not passed."""
    rc = config.retention
    if action_date + dt.timedelta(days=rc.horizon_days) > as_of:
        raise ValueError(
            f"retention_outcomes: action_date {action_date} matures on "
            f"{action_date + dt.timedelta(days=rc.horizon_days)} (horizon {rc.horizon_days} days), not by {as_of}"
        )
    start = midnight(action_date)
    frame = wh.query_df(
        wh.render(_OUTCOME_SQL),
        {"action_date": action_date, "start": start, "end": start + dt.timedelta(days=rc.horizon_days)},
    )
    contact = {"none": 0.0, **{a.name: a.cost_per_contact for a in rc.actions}}
    redeem = {"none": 0.0, **{a.name: a.cost_when_redeemed for a in rc.actions}}
    frame["retained"] = frame.pop("orders").to_numpy() > 0
    frame["revenue"] = frame["revenue"].astype(np.float64)
    frame["margin"] = frame["revenue"] * rc.margin_rate
    # An action dropped from the catalogue since keeps no cost: logged, never guessed silently.
    unknown = sorted(set(frame["action"]) - set(contact))
    if unknown:
        logger.warning(
            "retention_outcomes %s: actions %s are no longer in the catalogue; costed at 0", action_date, unknown
        )
    frame["cost"] = frame["action"].map(contact).fillna(0.0) + frame["retained"] * frame["action"].map(redeem).fillna(
        0.0
    )
    frame["net_value"] = frame["margin"] - frame["cost"]
    frame["matured_on"] = as_of
    return frame[RETENTION_OUTCOMES.column_names]


def measure_outcomes(
    config: Config, as_of: dt.date, *, wh: Warehouse | None = None, remeasure: bool = False
) -> list[dict]:
    """Write ``retention_outcomes`` for every action date matured by ``as_of``; one summary per date."""
    from pipelines.warehouse import open_warehouse

    own = wh is None
    wh = wh or open_warehouse(config)
    results = []
    try:
        for action_date in matured_action_dates(wh, config, as_of, remeasure=remeasure):
            frame = outcome_frame(wh, config, action_date, as_of)
            wh.replace_partition(RETENTION_OUTCOMES, frame, "action_date", action_date)
            results.append(
                {
                    "action_date": action_date.isoformat(),
                    "rows": len(frame),
                    "retention_rate": float(frame["retained"].mean()) if len(frame) else float("nan"),
                }
            )
            logger.info(
                "retention outcomes of %s: %d rows, retained %.3f",
                action_date,
                len(frame),
                results[-1]["retention_rate"],
            )
    finally:
        if own:
            wh.close()
    if not results:
        logger.info("retention outcomes: nothing matured by %s (horizon %d days)", as_of, config.retention.horizon_days)
    return results
