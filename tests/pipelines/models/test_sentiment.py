"""Review sentiment head on the packaged encoder: beats the majority class on held-out reviews; every review scored."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from pipelines.models.sentiment import SentimentHead, train_sentiment, weak_labels


def test_weak_labels():
    assert weak_labels([1, 2, 3, 4, 5]).tolist() == [0, 0, -1, 1, 1]


def test_head_round_trips_and_refuses_a_partial_directory(tmp_path):
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(200, 8))
    ratings = np.where(emb[:, 0] > 0, 5, 1)
    head = train_sentiment(emb, ratings, encoder="x")
    assert head.report["heldout_accuracy"] > 0.9
    loaded = SentimentHead.load(head.save(tmp_path / "s"))
    np.testing.assert_allclose(loaded.predict(emb), head.predict(emb))
    (tmp_path / "s" / "sentiment.json").unlink()
    with pytest.raises(ValueError, match="not a sentiment head"):
        SentimentHead.load(tmp_path / "s")


@pytest.mark.slow
def test_sentiment_job_on_generated_reviews(config, tmp_path):
    """The packaged MiniLM + head on generated review texts; every review before as_of gets a sentiment."""
    from pipelines.data.generator import generate_sample_data
    from pipelines.training.sentiment import score_review_sentiment
    from pipelines.warehouse import open_warehouse

    with open_warehouse(config) as wh:
        wh.init_schema()
        generate_sample_data(wh, customers=250, seed=5, start=dt.date(2024, 1, 1), end=dt.date(2025, 1, 1))
    report = score_review_sentiment(config, dt.date(2025, 1, 1))
    assert report["heldout_accuracy"] > report["heldout_majority_class_accuracy"]
    assert report["heldout_accuracy"] >= 0.8
    with open_warehouse(config) as wh:
        table = wh.query_df(wh.render("SELECT * FROM {review_sentiment}"))
        n_reviews = wh.scalar(wh.render("SELECT COUNT(*) FROM {reviews} WHERE reviewed_at < '2025-01-01 00:00:00+00'"))
    assert len(table) == n_reviews and table["sentiment"].notna().sum() == report["reviews_scored"]
    low, high = table[table["rating"] <= 2]["sentiment"].mean(), table[table["rating"] >= 4]["sentiment"].mean()
    assert low < 0.5 < high
    assert table.loc[table["rating"] == 3, "disagrees"].isna().all()
