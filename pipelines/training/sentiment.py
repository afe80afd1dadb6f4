"""The review-sentiment job: train the head on the reviews before ``as_of`` and score every one of them.

Only reviews strictly before ``as_of`` are read (the leakage rule: a feature built from this table at a
cutoff before ``as_of`` sees only reviews before that cutoff, and the head never saw a later review). The
held-out accuracy and the share where text and stars disagree are returned and stored with the head
(``<models dir>/sentiment/sentiment.json``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import numpy as np
import pandas as pd

from pipelines.config import Config
from pipelines.contract import REVIEW_SENTIMENT
from pipelines.dates import as_date
from pipelines.models.sentiment import encode_texts, train_sentiment, weak_labels

logger = logging.getLogger(__name__)


def score_review_sentiment(config: Config, as_of: dt.date | str) -> dict:
    """Fit the sentiment head, write ``review_sentiment`` (whole table, atomically); returns the report."""
    from pipelines.models.network import resolve_encoder_path
    from pipelines.warehouse import open_warehouse

    as_of = as_date(as_of)
    started = time.perf_counter()
    cutoff = dt.datetime(as_of.year, as_of.month, as_of.day, tzinfo=dt.UTC)
    with open_warehouse(config) as wh:
        wh.init_schema((REVIEW_SENTIMENT,))
        reviews = wh.query_df(
            wh.render(
                "SELECT review_id, customer_id, reviewed_at, rating, review_text FROM {reviews} "
                "WHERE reviewed_at < :cutoff ORDER BY review_id"
            ),
            {"cutoff": cutoff},
        )
        has_text = reviews["review_text"].fillna("").str.strip().ne("").to_numpy()
        texts = reviews.loc[has_text, "review_text"].tolist()
        emb = encode_texts(texts, resolve_encoder_path(config.model.encoder))
        head = train_sentiment(
            emb, reviews.loc[has_text, "rating"].to_numpy(), encoder=config.model.encoder, seed=config.training.seed
        )
        sentiment = np.full(len(reviews), np.nan)
        sentiment[has_text] = head.predict(emb)
        labels = weak_labels(reviews["rating"].to_numpy())
        disagrees = pd.array(np.where(labels >= 0, (sentiment >= 0.5).astype(int) != labels, False), dtype="boolean")
        disagrees[(labels < 0) | ~has_text] = pd.NA
        frame = pd.DataFrame(
            {
                "review_id": reviews["review_id"].astype("int64"),
                "customer_id": reviews["customer_id"].astype("int64"),
                "reviewed_at": reviews["reviewed_at"],
                "rating": reviews["rating"].astype("int32"),
                "sentiment": sentiment,
                "disagrees": disagrees,
                "computed_at": pd.Timestamp.now(tz="UTC"),
            }
        )
        written = wh.replace_table(REVIEW_SENTIMENT, frame)
    out = config.resolve_path(config.dataset.output_dir).parent / "models" / "sentiment"
    head.report.update(
        {
            "as_of": as_of.isoformat(),
            "reviews_scored": int(has_text.sum()),
            "reviews_without_text": int((~has_text).sum()),
            "disagreement_share_all": round(float(np.nanmean(disagrees.astype("float"))), 4) if written else None,
            "seconds": round(time.perf_counter() - started, 1),
        }
    )
    head.save(out)
    logger.info("review sentiment: %s (head in %s)", head.report, out)
    return dict(head.report)
