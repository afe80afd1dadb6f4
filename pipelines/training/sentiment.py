"""The review-sentiment job: train the head before the training window closes, score every review before ``as_of``.

Which reviews the head is trained on (the leakage rule): only reviews written strictly before the **last
train cutoff** of the training sets built for ``as_of`` (``choose_cutoffs(config, as_of)["train"][-1]``).
The sentiment features (``sentiment_*``, :mod:`pipelines.features.sql`) of a row at cutoff ``t`` read only
reviews before ``t``; so validation and test rows, and every scored customer later, see only reviews the
head never saw. The head's own training reviews get **out-of-fold** values
(:func:`pipelines.models.sentiment.out_of_fold`), so a train row's features are not cleaner than a
scored customer's. Every review before ``as_of`` is written to ``review_sentiment`` with the head's id;
the head is saved under ``<models dir>/sentiment/<head_id>/`` (safetensors + JSON, never pickled), the
training run logs it with the model (``sentiment/``) and the scoring job loads it from there.

The encoder runs once per review text (one batched pass); the head and its folds are logistic
regressions on those vectors. A shop without enough 1-2 / 4-5 star review texts gets no head: every
review's row has a null sentiment and the features take their neutral fill values.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.config import Config
from pipelines.contract import REVIEW_SENTIMENT
from pipelines.dates import as_date, utc_midnight
from pipelines.models.sentiment import SentimentHead, encode_texts, out_of_fold, train_sentiment, weak_labels

logger = logging.getLogger(__name__)

SENTIMENT_ARTIFACT = "sentiment"  # the training run's artifact folder holding the head


def sentiment_heads_dir(config: Config) -> Path:
    """Where trained heads are kept, one folder per head id (beside the training sets)."""
    return config.resolve_path(config.dataset.output_dir).parent / "models" / "sentiment"


def head_cutoff(config: Config, as_of: dt.date) -> dt.date:
    """The last train cutoff of ``as_of``'s training sets: the head learns only from reviews before it."""
    from pipelines.datasets.build import choose_cutoffs

    return choose_cutoffs(config, as_of)["train"][-1]


def sentiment_frame(reviews: pd.DataFrame, sentiment: np.ndarray, head_id: str | None) -> pd.DataFrame:
    """``review_sentiment`` rows: ``disagrees`` is null for 3 stars and for reviews without a sentiment."""
    labels = weak_labels(reviews["rating"].to_numpy())
    scored = ~np.isnan(sentiment)
    disagrees = pd.array(np.where(labels >= 0, (sentiment >= 0.5).astype(int) != labels, False), dtype="boolean")
    disagrees[(labels < 0) | ~scored] = pd.NA
    return pd.DataFrame(
        {
            "review_id": reviews["review_id"].astype("int64").to_numpy(),
            "customer_id": reviews["customer_id"].astype("int64").to_numpy(),
            "reviewed_at": pd.to_datetime(reviews["reviewed_at"], utc=True).reset_index(drop=True),
            "rating": reviews["rating"].astype("int32").to_numpy(),
            "sentiment": sentiment,
            "disagrees": disagrees,
            "computed_at": pd.Timestamp.now(tz="UTC"),
            "head_id": head_id,
        }
    )


def has_text(reviews: pd.DataFrame) -> np.ndarray:
    return reviews["review_text"].fillna("").str.strip().ne("").to_numpy()


def score_review_sentiment(config: Config, as_of: dt.date | str) -> dict:
    """Fit the head on reviews before the last train cutoff, rewrite ``review_sentiment``; returns the report."""
    from pipelines.models.network import resolve_encoder_path
    from pipelines.warehouse import open_warehouse

    as_of = as_date(as_of)
    started = time.perf_counter()
    trained_before = head_cutoff(config, as_of)
    with open_warehouse(config) as wh:
        wh.init_schema((REVIEW_SENTIMENT,))
        reviews = wh.query_df(
            wh.render(
                "SELECT review_id, customer_id, reviewed_at, rating, review_text FROM {reviews} "
                "WHERE reviewed_at < :cutoff ORDER BY review_id"
            ),
            {"cutoff": utc_midnight(as_of)},
        )
        text = has_text(reviews)
        before = (
            pd.to_datetime(reviews["reviewed_at"], utc=True) < pd.Timestamp(utc_midnight(trained_before))
        ).to_numpy()
        sentiment = np.full(len(reviews), np.nan)
        report: dict = {"as_of": as_of.isoformat(), "trained_before": trained_before.isoformat()}
        head = None
        if text.any():
            emb = encode_texts(reviews.loc[text, "review_text"].tolist(), resolve_encoder_path(config.model.encoder))
            ratings, fit = reviews.loc[text, "rating"].to_numpy(), before[text]
            try:
                head = train_sentiment(emb[fit], ratings[fit], encoder=config.model.encoder, seed=config.training.seed)
            except ValueError as exc:  # too few labelled texts before the cutoff: no head, neutral features
                logger.warning("review sentiment: no head trained (%s); features take their neutral values", exc)
                report["no_head"] = str(exc)
            if head is not None:
                values = head.predict(emb)  # reviews from the cutoff on, and the 3-star ones, were never seen
                oof = out_of_fold(emb[fit], ratings[fit], seed=config.training.seed)
                seen = np.flatnonzero(fit)[~np.isnan(oof)]
                values[seen] = oof[~np.isnan(oof)]
                sentiment[text] = values
                report.update(head.report)
                report.update(_later_accuracy(values[~fit], ratings[~fit]))
        frame = sentiment_frame(reviews, sentiment, head.head_id if head is not None else None)
        wh.replace_table(REVIEW_SENTIMENT, frame)
    report.update(
        {
            "head_id": head.head_id if head is not None else None,
            "reviews_scored": int((~np.isnan(sentiment)).sum()),
            "reviews_without_text": int((~text).sum()),
            "reviews_before_cutoff": int(before.sum()),
            "disagreement_share_all": (
                round(float(frame["disagrees"].astype("float").mean()), 4) if frame["disagrees"].notna().any() else None
            ),
            "seconds": round(time.perf_counter() - started, 1),
        }
    )
    if head is not None:
        head.report = report
        head.save(sentiment_heads_dir(config) / head.head_id)
    logger.info("review sentiment: %s", report)
    return report


def _later_accuracy(sentiment: np.ndarray, ratings: np.ndarray) -> dict:
    """Accuracy against the stars on the reviews after the head's cutoff: held out in time, as at scoring."""
    y = weak_labels(ratings)
    judged = y >= 0
    if not judged.any():
        return {"later_reviews": 0}
    accuracy = float(((sentiment[judged] >= 0.5).astype(int) == y[judged]).mean())
    return {"later_reviews": int(judged.sum()), "later_accuracy": round(accuracy, 4)}


def load_head(config: Config, head_id: str) -> SentimentHead | None:
    """The saved head of ``head_id`` (None when it is not on this machine)."""
    path = sentiment_heads_dir(config) / head_id
    return SentimentHead.load(path) if path.is_dir() else None


def log_sentiment_head(config: Config, sets) -> None:
    """Log the head the training sets' sentiment features came from under the run's ``sentiment/`` folder.

    Warns (and notes it in the run) when that head was trained on reviews past the sets' last train cutoff:
    its values would then carry reviews from the validation and test periods into the features.
    """
    import mlflow

    head_id = (sets.manifest.get("review_sentiment") or {}).get("head_id")
    if head_id is None:
        logger.warning("the training sets carry no sentiment head: scoring keeps review_sentiment as it is")
        return
    path = sentiment_heads_dir(config) / head_id
    if not path.is_dir():
        logger.warning("sentiment head %s not found in %s: not logged with the model", head_id, path.parent)
        return
    head = SentimentHead.load(path)
    last_train = (sets.manifest.get("cutoffs") or {}).get("train", [""])[-1]
    trained_before = str(head.report.get("trained_before", ""))
    if not trained_before or trained_before > last_train:
        note = (
            f"The sentiment head {head_id} was trained on reviews before {trained_before or 'an unknown date'}, "
            f"past the last train cutoff {last_train}: run `churn sentiment --as-of {sets.manifest.get('as_of')}` "
            "before building the training sets."
        )
        logger.warning(note)
        mlflow.set_tag("sentiment_warning", note)
    mlflow.log_artifacts(str(path), artifact_path=SENTIMENT_ARTIFACT)
    mlflow.set_tags({"sentiment_head_id": head_id, "sentiment_trained_before": head.report.get("trained_before", "")})
    for key in ("heldout_accuracy", "heldout_majority_class_accuracy", "later_accuracy", "disagreement_share_all"):
        if isinstance(head.report.get(key), int | float):
            mlflow.log_metric(f"sentiment_{key}", float(head.report[key]))
