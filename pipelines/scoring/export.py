"""Hand-over to downstream tools: one row per scored customer with tier, top reason, segment and action.

``crm_export`` joins the day's ``churn_scores`` with rank-1 ``churn_score_reasons``, ``customer_segments`` and,
when the retention package decided one, ``retention_actions.action`` (``recommended_action``; null otherwise).
With ``pseudonymise`` the ids are the keyed pseudonyms of :mod:`pipelines.features.privacy` (the same as in
MLflow artifacts), so a tool outside the warehouse never sees the raw ids.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

import pandas as pd

from pipelines.contract import CHURN_SCORE_REASONS, CHURN_SCORES, CUSTOMER_SEGMENTS, ExitCode

if TYPE_CHECKING:
    from pipelines.config import Config
    from pipelines.warehouse import Warehouse

logger = logging.getLogger(__name__)

CRM_COLUMNS = [
    "customer_id",
    "score_date",
    "churn_probability",
    "risk_tier",
    "value_at_risk",
    "probability_change",
    "top_reason_code",
    "top_reason",
    "segment_name",
    "recommended_action",
]
RETENTION_ACTIONS = "retention_actions"


class ExportError(RuntimeError):
    """Nothing to export for the requested date."""

    exit_code = ExitCode.SCORING


def crm_export(wh: Warehouse, config: Config, score_date: dt.date, *, pseudonymise: bool = False) -> pd.DataFrame:
    """The CRM hand-over rows of ``score_date``, highest value at risk first."""
    from pipelines.features.privacy import pseudonymise_ids

    scores = wh.qualified(CHURN_SCORES.name)
    if not wh.scalar(f"SELECT COUNT(*) FROM {scores} WHERE score_date = :d", {"d": score_date}):
        raise ExportError(
            f"churn_scores has no rows for score_date {score_date}; run `churn score --date {score_date}`"
        )
    reasons, segments = wh.qualified(CHURN_SCORE_REASONS.name), wh.qualified(CUSTOMER_SEGMENTS.name)
    action = "CAST(NULL AS TEXT)"
    join_action = ""
    if wh.table_exists(RETENTION_ACTIONS):
        action = "a.action"
        join_action = f"LEFT JOIN {wh.qualified(RETENTION_ACTIONS)} a ON a.customer_id = s.customer_id AND a.action_date = s.score_date"
    sql = f"""
SELECT s.customer_id, s.score_date, s.churn_probability, s.risk_tier, s.value_at_risk, s.probability_change,
       r.reason_code AS top_reason_code, r.text AS top_reason, g.segment_name, {action} AS recommended_action
FROM {scores} s
LEFT JOIN {reasons} r ON r.score_date = s.score_date AND r.customer_id = s.customer_id AND r.rank = 1
LEFT JOIN {segments} g ON g.score_date = s.score_date AND g.customer_id = s.customer_id
{join_action}
WHERE s.score_date = :d
ORDER BY s.value_at_risk DESC NULLS LAST, s.churn_probability DESC, s.customer_id"""
    frame = wh.query_df(sql, {"d": score_date})[CRM_COLUMNS]
    if pseudonymise:
        from pipelines.features.privacy import pseudonym_key

        frame["customer_id"] = pseudonymise_ids(frame["customer_id"].to_numpy(), pseudonym_key(config))
    logger.info("CRM export for %s: %d customers%s", score_date, len(frame), " (pseudonymised)" if pseudonymise else "")
    return frame
