"""Daily review sentiment at scoring: every review before the score date gets the champion's head's value.

Why at scoring: the ``sentiment_*`` features read ``review_sentiment``; a review written since the model
was trained has no row yet, so the scoring job computes it before the features are built. Rows the same
head computed before (``head_id``) are reused: a day's cost is one encoder pass over that day's new review
texts (the training job's out-of-fold values for the head's own training reviews stay as they are). A
champion with another head recomputes every review once. A version without a head (trained before
sentiment features) leaves the table as it is: its model does not read these features.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.contract import REVIEW_SENTIMENT
from pipelines.dates import as_date, utc_midnight
from pipelines.models.sentiment import SentimentHead, encode_texts
from pipelines.training.sentiment import SENTIMENT_ARTIFACT, has_text, sentiment_frame

if TYPE_CHECKING:
    from pipelines.config import Config
    from pipelines.warehouse import Warehouse

logger = logging.getLogger(__name__)


def sentiment_head_for(config: Config, model_version: str) -> SentimentHead | None:
    """The registered version's sentiment head (logged with its training run), or None with a warning."""
    from pipelines import tracking as t

    try:
        return t.load_version_artifact(
            config, model_version, SENTIMENT_ARTIFACT, SentimentHead.load, "churn-sentiment-"
        )
    except Exception as exc:  # no artifact (older version) or no registry entry (a stand-in model)
        logger.warning(
            "no sentiment head for %s v%s (%s): review_sentiment kept as it is",
            config.registry.model_name,
            model_version,
            exc,
        )
        return None


def refresh_review_sentiment(config: Config, score_date: dt.date | str, model_version: str) -> dict[str, Any]:
    """Give every review before ``score_date`` a ``review_sentiment`` row from ``model_version``'s head.

    Returns ``{"head_id", "computed", "reused", "seconds"}``; the new rows replace the stale ones in one
    transaction.
    """
    from pipelines.warehouse import open_warehouse

    with open_warehouse(config) as wh:
        return refresh_in(wh, config, as_date(score_date), model_version)


def refresh_in(wh: Warehouse, config: Config, score_date: dt.date, model_version: str) -> dict[str, Any]:
    """:func:`refresh_review_sentiment` on an open warehouse (the single-task scoring path)."""
    head = sentiment_head_for(config, model_version)
    wh.init_schema((REVIEW_SENTIMENT,))
    if head is None:
        return {"head_id": None, "computed": 0, "reused": wh.row_count(REVIEW_SENTIMENT.name), "seconds": 0.0}
    return update_review_sentiment(wh, head, score_date)


def update_review_sentiment(wh: Warehouse, head: SentimentHead, score_date: dt.date) -> dict[str, Any]:
    """Compute the reviews before ``score_date`` that ``head`` has no row for; reuse the others."""
    from pipelines.models.network import resolve_encoder_path

    started = time.perf_counter()
    head_id = head.head_id
    todo = wh.query_df(
        wh.render(
            "SELECT v.review_id, v.customer_id, v.reviewed_at, v.rating, v.review_text FROM {reviews} v "
            "LEFT JOIN {review_sentiment} s ON s.review_id = v.review_id "
            "WHERE v.reviewed_at < :cutoff AND (s.review_id IS NULL OR s.head_id IS NULL OR s.head_id <> :head) "
            "ORDER BY v.review_id"
        ),
        {"cutoff": utc_midnight(score_date), "head": head_id},
    )
    sentiment = np.full(len(todo), np.nan)
    text = has_text(todo) if len(todo) else np.zeros(0, dtype=bool)
    if text.any():
        emb = encode_texts(todo.loc[text, "review_text"].tolist(), resolve_encoder_path(head.encoder))
        sentiment[text] = head.predict(emb)
    if len(todo):
        frame = sentiment_frame(todo, sentiment, head_id)
        arrow = wh._to_arrow(REVIEW_SENTIMENT, frame)
        with wh.transaction():  # stale rows of this head's reviews go, the new ones come, together
            wh.execute(
                wh.render(
                    "DELETE FROM {review_sentiment} WHERE review_id IN ("
                    "SELECT v.review_id FROM {reviews} v WHERE v.reviewed_at < :cutoff) "
                    "AND (head_id IS NULL OR head_id <> :head)"
                ),
                {"cutoff": utc_midnight(score_date), "head": head_id},
            )
            wh._load_arrow(REVIEW_SENTIMENT.name, arrow)
    total = wh.row_count(REVIEW_SENTIMENT.name)
    result = {
        "head_id": head_id,
        "computed": len(todo),
        "encoded": int(text.sum()),
        "reused": total - len(todo),
        "seconds": round(time.perf_counter() - started, 3),
    }
    logger.info("review sentiment for %s: %s", score_date, result)
    return result
