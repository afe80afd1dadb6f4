"""Review sentiment head on the packaged encoder: beats the majority class on held-out reviews; every review scored."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from pipelines.models.sentiment import SentimentHead, out_of_fold, train_sentiment, weak_labels


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


def test_out_of_fold_values_come_from_heads_that_never_saw_the_review():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(300, 8))
    ratings = np.where(emb[:, 0] > 0, 5, 1)
    ratings[:20] = 3
    oof = out_of_fold(emb, ratings, folds=5, seed=0)
    assert np.isnan(oof[:20]).all() and not np.isnan(oof[20:]).any()  # 3 stars: no label, no fold value
    assert ((oof[20:] >= 0.5) == (ratings[20:] == 5)).mean() > 0.9
    # a review's fold value does not move when its own label flips (its head never saw it)
    flipped = ratings.copy()
    flipped[25] = 6 - flipped[25]
    again = out_of_fold(emb, flipped, folds=5, seed=0)
    assert again[25] == pytest.approx(oof[25], abs=0.05)


@pytest.mark.slow
def test_sentiment_job_trains_before_the_last_train_cutoff_and_scoring_reuses_its_rows(config, tmp_path):
    """The packaged MiniLM + head on generated review texts: the head learns only from reviews before the
    last train cutoff (rewriting later reviews leaves it unchanged), every review before as_of gets a row,
    and the scoring refresh encodes only the reviews it has no row for, never one on the score date."""
    import pandas as pd

    from pipelines.data.generator import generate_sample_data
    from pipelines.datasets.build import choose_cutoffs
    from pipelines.features import build_features
    from pipelines.scoring.sentiment import update_review_sentiment
    from pipelines.training.sentiment import load_head, score_review_sentiment
    from pipelines.warehouse import open_warehouse

    as_of = dt.date(2025, 1, 1)
    with open_warehouse(config) as wh:
        wh.init_schema()
        generate_sample_data(wh, customers=250, seed=5, start=dt.date(2024, 1, 1), end=as_of)
    report = score_review_sentiment(config, as_of)
    cutoff = choose_cutoffs(config, as_of)["train"][-1]
    assert report["trained_before"] == cutoff.isoformat() and report["head_id"]
    assert report["heldout_accuracy"] > report["heldout_majority_class_accuracy"]
    assert report["heldout_accuracy"] >= 0.8 and report["later_accuracy"] >= 0.8
    query = "SELECT * FROM {review_sentiment} ORDER BY review_id"
    with open_warehouse(config) as wh:
        table = wh.query_df(wh.render(query))
        n_reviews = wh.scalar(wh.render("SELECT COUNT(*) FROM {reviews} WHERE reviewed_at < '2025-01-01 00:00:00+00'"))
        # reviews from the head's cutoff on say the opposite with their stars: the head must not notice
        wh.execute(
            wh.render("UPDATE {reviews} SET rating = 6 - rating WHERE reviewed_at >= :c"),
            {"c": dt.datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=dt.UTC)},
        )
    assert len(table) == n_reviews and table["sentiment"].notna().sum() == report["reviews_scored"]
    assert (table["head_id"] == report["head_id"]).all()
    low, high = table[table["rating"] <= 2]["sentiment"].mean(), table[table["rating"] >= 4]["sentiment"].mean()
    assert low < 0.5 < high
    assert table.loc[table["rating"] == 3, "disagrees"].isna().all()
    assert score_review_sentiment(config, as_of)["head_id"] == report["head_id"]
    with open_warehouse(config) as wh:
        again = wh.query_df(wh.render(query))
    pd.testing.assert_series_equal(again["sentiment"], table["sentiment"])  # the same values, folds included

    head = load_head(config, report["head_id"])
    score_date = dt.date(2025, 1, 10)
    with open_warehouse(config) as wh:
        customer = int(build_features(wh, config, [score_date], labels=False)["customer_id"].iloc[0])
        new = pd.DataFrame(
            {
                "review_id": [10**9, 10**9 + 1],
                "customer_id": [customer, customer],
                "product_id": [None, None],
                "rating": [1, 5],
                "review_text": ["Broken on arrival, never again.", "Lovely, works perfectly."],
                "reviewed_at": pd.to_datetime(
                    ["2025-01-05 10:00", "2025-01-10 00:00"], utc=True
                ),  # the 2nd: on the date
            }
        )
        wh.bulk_load("reviews", new)
        since = wh.scalar(  # reviews written from as_of to the day before the score date: none has a row yet
            wh.render("SELECT COUNT(*) FROM {reviews} WHERE reviewed_at >= :a AND reviewed_at < :d"),
            {"a": dt.datetime(2025, 1, 1, tzinfo=dt.UTC), "d": dt.datetime(2025, 1, 10, tzinfo=dt.UTC)},
        )
        result = update_review_sentiment(wh, head, score_date)
        assert (result["computed"], result["reused"]) == (since, n_reviews) and since >= 1
        rows = wh.query_df(wh.render("SELECT * FROM {review_sentiment} WHERE review_id >= :r"), {"r": 10**9})
        assert rows["review_id"].tolist() == [10**9] and rows["head_id"].tolist() == [report["head_id"]]
        assert update_review_sentiment(wh, head, score_date)["computed"] == 0  # the next run reuses it
        features = build_features(wh, config, [score_date], labels=False)
    row = features[features["customer_id"] == customer]  # its latest review before the date is the new one
    assert row["sentiment_last"].item() == pytest.approx(rows["sentiment"].item())
