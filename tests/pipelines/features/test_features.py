"""Point-in-time features in SQL: exact values, labels, no leakage, same result on DuckDB and Postgres."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pipelines.features import (
    LABEL_COLUMN,
    SEGMENT_COLUMNS,
    TEXT_COLUMN,
    build_features,
    customer_features,
    feature_columns,
    iter_scoring_features,
    numeric_feature_names,
)
from pipelines.features.build import population_id_ranges

CUTOFF = dt.date(2025, 3, 1)  # the cutoff the hand-made rows in conftest.py are placed around
CUSTOMER_1 = {
    "days_since_last_order": 5.625,  # 2025-02-23 09:00 -> 2025-03-01 00:00
    "days_since_last_event": (4 * 60 - 5) / 1440,  # add_to_cart 2025-02-28 20:05
    "tenure_days": 365.0,
    "orders_30d": 1.0,
    "orders_90d": 2.0,
    "orders_180d": 3.0,
    "orders_365d": 4.0,
    "revenue_30d": 54.9,
    "revenue_90d": 90.4,
    "revenue_180d": 130.4,
    "revenue_365d": 230.4,
    "orders_trend_90d": (2 - 1) / 3,
    "revenue_trend_90d": (90.4 - 40.0) / 130.4,
    "avg_order_value_365d": 230.4 / 4,
    "categories_365d": 3.0,  # books, toys, electronics (shoes only in a returned order)
    "cancellation_rate_365d": 1 / 6,
    "return_rate_365d": 1 / 6,
    "sessions_30d": 3.0,
    "sessions_90d": 4.0,
    "searches_90d": 1.0,
    "add_to_cart_90d": 2.0,
    "cart_abandonment_rate_90d": 0.5,
    "support_contacts_30d": 1.0,
    "support_contacts_90d": 1.0,
    # completed purchase days 2024-06-15, 2024-11-20, 2025-01-02, 2025-02-23 (259, 101, 58, 6 days ago)
    "btyd_frequency": 3.0,
    "btyd_recency_days": 253.0,
    "btyd_age_days": 259.0,
    "median_gap_days": 52.0,  # gaps 158, 43, 52
    "overdue_ratio": 5.625 / 52,
    "reviews_365d": 2.0,
    "mean_rating_365d": 3.5,
    "low_rating_share_365d": 0.5,
    "sentiment_mean_365d": (0.8 + 0.6) / 2,  # review_sentiment rows of reviews 1 and 2 (conftest.SENTIMENT)
    "sentiment_last": 0.6,  # review 2, four days before the cutoff
    "sentiment_disagree_share_365d": 0.5,  # review 2's text disagrees with its 2 stars
    # five population customers are too few for a BG/NBD fit: the documented fallback (prior at x = 0)
    "bgnbd_expected_purchases": 0.0,
    "bgnbd_p_alive": 1.0,
}
TEXT_1 = (
    '[1d ago] abandoned cart: shoes | [3d ago] support contact | [4d ago] review 2/5 "parcel arrived late and '
    'damaged" | [6d ago] order 54.90 completed: books, electronics | [19d ago] order 20.00 returned: shoes | '
    "[40d ago] order 15.00 cancelled: toys | [58d ago] order 35.50 completed: toys | [101d ago] order 40.00 "
    'completed: books, toys | [212d ago] review 5/5 "great read" | [259d ago] order 100.00 completed: books'
)


def _row(frame: pd.DataFrame, customer_id: int) -> pd.Series:
    rows = frame[frame["customer_id"] == customer_id]
    assert len(rows) == 1, f"customer {customer_id}: {len(rows)} rows"
    return rows.iloc[0]


def test_feature_names_follow_the_windows(config):
    names = numeric_feature_names(config)
    assert names == list(CUSTOMER_1)
    custom = config.with_overrides({"dataset": {"windows_days": [7, 30]}})
    assert {"orders_7d", "revenue_7d", "orders_30d"} <= set(numeric_feature_names(custom))
    assert "orders_365d" not in numeric_feature_names(custom)


def test_hand_computed_customer_on_each_backend(loaded, config):
    frame = build_features(loaded, config, [CUTOFF])
    assert list(frame.columns) == feature_columns(config, labels=True)
    row = _row(frame, 1)
    assert row["cutoff_date"] == CUTOFF
    for name, expected in CUSTOMER_1.items():
        assert row[name] == pytest.approx(expected, abs=1e-9), name
    assert row[TEXT_COLUMN] == TEXT_1
    assert (row["tenure_band"], row["acquisition_channel"]) == ("1-2y", "paid_search")
    # dtypes are the contract's on both backends
    assert frame["customer_id"].dtype == "int64" and frame[LABEL_COLUMN].dtype == "int64"
    assert all(frame[n].dtype == "float64" for n in numeric_feature_names(config))
    assert not frame[numeric_feature_names(config)].isna().any().any()


def test_sparse_customers_get_documented_fill_values(loaded, config):
    frame = build_features(loaded, config, [CUTOFF])
    c3 = _row(frame, 3)
    assert c3[TEXT_COLUMN] == "[24d ago] review 4/5 | [28d ago] order 25.00 completed: books"  # null text: no quotes
    assert (c3["searches_90d"], c3["sessions_90d"], c3["mean_rating_365d"]) == (2.0, 1.0, 4.0)
    assert c3["tenure_band"] == "<3m"
    c4 = _row(frame, 4)
    assert c4["days_since_last_event"] == 365.0  # no event in the history span: the documented sentinel
    assert (c4["cart_abandonment_rate_90d"], c4["mean_rating_365d"], c4["low_rating_share_365d"]) == (0, 0, 0)
    assert c4["orders_trend_90d"] == 1.0 and c4["tenure_band"] == "2y+"
    assert _row(frame, 5)["days_since_last_order"] == pytest.approx(1 / 86400)


def test_population_and_label_boundaries(loaded, config):
    frame = build_features(loaded, config, [CUTOFF])
    labels = dict(zip(frame["customer_id"], frame[LABEL_COLUMN], strict=True))
    # 2: only order older than the lookback -> not in the population
    assert set(labels) == {1, 3, 4, 5, 6}
    assert labels[1] == 1  # no order after the cutoff
    assert labels[3] == 0  # completed order 45 days after the cutoff
    assert labels[4] == 1  # cancelled inside the horizon, completed exactly at cutoff + 90 days (outside)
    assert labels[5] == 1
    assert labels[6] == 0  # completed exactly at the cutoff instant: a label, not a feature
    assert _row(frame, 6)["orders_30d"] == 0 and _row(frame, 6)["orders_365d"] == 1


def test_no_leakage_from_rows_on_or_after_the_cutoff(warehouse, config, rows):
    rows.load(warehouse, rows.frames())
    before = build_features(warehouse, config, [CUTOFF])
    # Rows at exactly the cutoff instant and later, for customers in the population.
    orders = rows.ORDERS + [
        (900, 1, "2025-03-01 00:00", "completed", 999.0, ["garden"]),
        (901, 1, "2025-03-10 12:00", "cancelled", 5.0, ["toys"]),
        (902, 5, "2025-03-01 00:00:01", "returned", 7.0, ["books"]),
        (903, 3, "2025-06-01 00:00", "completed", 1.0, ["books"]),
    ]
    events = rows.EVENTS + [
        (900, 1, "s1-cart", "checkout", None, "2025-03-01 00:00"),  # same session, after the cutoff
        (901, 1, "s1-new", "support_contact", None, "2025-03-01 00:00"),
        (902, 4, "s4-new", "add_to_cart", 10, "2025-03-02 10:00"),
        (903, 3, "s3-a", "search", None, "2025-03-01 00:00:00.000001"),
    ]
    reviews = rows.REVIEWS + [
        (900, 1, 11, 1, "terrible, never again", "2025-03-01 00:00"),
        (901, 6, 10, 1, "bad", "2025-03-05 10:00"),
        (902, 4, 10, 5, "love it", "2025-03-01 00:00"),  # customer 4 has no review before the cutoff
    ]
    # their sentiment rows too: a review on or after the cutoff must not move any sentiment feature
    sentiment = rows.SENTIMENT + [(900, 0.0, False), (901, 0.05, False), (902, 0.02, True)]
    warehouse.execute(warehouse.render("DELETE FROM {order_items}"))
    for table in ("orders", "events", "reviews", "review_sentiment"):
        warehouse.execute(warehouse.render(f"DELETE FROM {{{table}}}"))
    data = rows.frames(orders, events, reviews, sentiment)
    for table in ("orders", "order_items", "events", "reviews", "review_sentiment"):
        warehouse.bulk_load(table, data[table])

    after = build_features(warehouse, config, [CUTOFF])
    cols = feature_columns(config, labels=False)
    pd.testing.assert_frame_equal(before[cols], after[cols])
    assert after.loc[after["customer_id"] == 1, LABEL_COLUMN].item() == 0  # the label does see the future
    # sanity: the new rows are visible to a later cutoff, so the comparison above is not vacuous
    later = build_features(warehouse, config, [dt.date(2025, 3, 2)])
    assert "garden" in _row(later, 1)[TEXT_COLUMN] and "never again" in _row(later, 1)[TEXT_COLUMN]
    assert _row(later, 1)["sentiment_last"] == 0.0 and _row(later, 4)["sentiment_disagree_share_365d"] == 1.0
    assert _row(after, 4)[["sentiment_mean_365d", "sentiment_last", "sentiment_disagree_share_365d"]].tolist() == [
        0.5,
        0.5,
        0.0,
    ]  # the documented fill values: no review before the cutoff


def test_several_cutoffs_equal_single_cutoff_builds(loaded, config):
    cutoffs = [dt.date(2025, 1, 15), CUTOFF]
    both = build_features(loaded, config, cutoffs)
    assert list(both["cutoff_date"].unique()) == cutoffs  # ordered by cutoff, then customer
    for cutoff in cutoffs:
        single = build_features(loaded, config, [cutoff])
        part = both[both["cutoff_date"] == cutoff].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, single)


def test_text_view_limits(loaded, config):
    small = config.with_overrides(
        {"dataset": {"text_recent_orders": 2, "text_recent_reviews": 1, "text_recent_events": 1}}
    )
    text = _row(build_features(loaded, small, [CUTOFF]), 1)[TEXT_COLUMN]
    assert text == (
        '[1d ago] abandoned cart: shoes | [4d ago] review 2/5 "parcel arrived late and damaged" | '
        "[6d ago] order 54.90 completed: books, electronics | [19d ago] order 20.00 returned: shoes"
    )


def test_compact_text_view_has_the_same_items_in_fewer_tokens(loaded, config, packaged_encoder_path):
    compact = config.with_overrides({"dataset": {"text_style": "compact"}})
    text = _row(build_features(loaded, compact, [CUTOFF]), 1)[TEXT_COLUMN]
    assert text == (
        '1d abandoned cart: shoes | 3d support contact | 4d review 2/5 "parcel arrived late and damaged" | '
        "6d order 55 completed: books, electronics | 19d order 20 returned: shoes | 40d order 15 cancelled: toys | "
        '58d order 36 completed: toys | 101d order 40 completed: books, toys | 212d review 5/5 "great read" | '
        "259d order 100 completed: books"
    )  # 35.50 rounds half away from zero on both engines
    from pipelines.models.network import load_tokenizer

    tokenizer = load_tokenizer(packaged_encoder_path)
    n_compact, n_verbose = (len(tokenizer(t)["input_ids"]) for t in (text, TEXT_1))
    assert n_compact <= n_verbose - 30  # 10 items: >= 3 tokens each


def test_unknown_text_style_is_refused(config):
    from pipelines.features.text_view import text_ctes

    with pytest.raises(ValueError, match="text view style 'tiny'"):
        text_ctes(recent_orders=1, recent_reviews=1, recent_events=1, style="tiny")


def test_long_review_text_is_capped(warehouse, config, rows):
    reviews = rows.REVIEWS + [(9, 5, 10, 3, "x" * 500 + "\nsecond line", "2025-02-27 10:00")]
    rows.load(warehouse, rows.frames(reviews=reviews))
    text = _row(build_features(warehouse, config, [CUTOFF]), 5)[TEXT_COLUMN]
    assert text == '[1d ago] order 10.00 completed: toys | [2d ago] review 3/5 "' + "x" * 200 + '"'


def test_iter_scoring_features_covers_population_once(loaded, config):
    chunks = list(iter_scoring_features(loaded, config, CUTOFF, chunk_rows=2))
    assert [len(c) for c in chunks] == [2, 2, 1]
    scored = pd.concat(chunks, ignore_index=True)
    assert list(scored["customer_id"]) == [1, 3, 4, 5, 6]
    assert list(scored.columns) == feature_columns(config, labels=False)
    reference = build_features(loaded, config, [CUTOFF]).drop(columns=[LABEL_COLUMN])
    pd.testing.assert_frame_equal(scored, reference)


def test_scoring_features_in_customer_slices_equal_one_query(loaded, config):
    """Bounded memory: slices of 2 population customers per query give exactly the one-query result."""
    sliced_config = config.with_overrides({"scoring": {"customers_per_feature_query": 2}})
    assert population_id_ranges(loaded, sliced_config, CUTOFF, 2) == [(1, 3), (4, 5), (6, 6)]
    chunks = list(iter_scoring_features(loaded, sliced_config, CUTOFF, chunk_rows=1000))
    assert [len(c) for c in chunks] == [2, 2, 1]  # one chunk per slice
    reference = build_features(loaded, config, [CUTOFF]).drop(columns=[LABEL_COLUMN])
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), reference)


def test_customer_features_matches_full_build(loaded, config):
    full = build_features(loaded, config, [CUTOFF], labels=False)
    one = customer_features(loaded, config, 1, CUTOFF)
    pd.testing.assert_frame_equal(one, full[full["customer_id"] == 1].reset_index(drop=True))
    assert customer_features(loaded, config, 2, CUTOFF).empty


def test_empty_population_has_typed_columns(warehouse, config):
    frame = build_features(warehouse, config, [CUTOFF])
    assert frame.empty and list(frame.columns) == feature_columns(config, labels=True)
    assert frame["customer_id"].dtype == "int64"
    assert set(SEGMENT_COLUMNS) <= set(frame.columns)


def test_datetime_cutoffs_are_refused(loaded, config):
    with pytest.raises(TypeError, match="dates"):
        build_features(loaded, config, [dt.datetime(2025, 3, 1, 12)])


@pytest.mark.postgres
def test_duckdb_and_postgres_give_identical_frames(tmp_path, postgres_url, postgres_schema, config, rows):
    from pipelines.warehouse import connect

    results = []
    for url, schema in ((f"duckdb:///{tmp_path}/x.duckdb", None), (postgres_url, postgres_schema)):
        with connect(url, schema) as wh:
            wh.init_schema()
            rows.load(wh, rows.frames())
            results.append(build_features(wh, config, [dt.date(2025, 1, 15), CUTOFF, dt.date(2025, 3, 20)]))
    assert len(results[0]) > 5
    pd.testing.assert_frame_equal(results[0], results[1], check_exact=False, rtol=1e-12)


def test_on_generated_sample_data(tmp_path, config):
    generator = pytest.importorskip("pipelines.data.generator")
    from pipelines.warehouse import connect

    with connect(f"duckdb:///{tmp_path}/gen.duckdb") as wh:
        wh.init_schema()
        generator.generate_sample_data(wh, customers=300, seed=1, start=dt.date(2024, 1, 1), end=dt.date(2025, 6, 30))
        frame = build_features(wh, config, [dt.date(2025, 3, 1), dt.date(2025, 4, 1)])
    assert len(frame) > 0 and not frame.duplicated(["customer_id", "cutoff_date"]).any()
    assert not frame[numeric_feature_names(config)].isna().any().any()
    assert frame[TEXT_COLUMN].str.len().gt(0).all()
    assert 0 < frame[LABEL_COLUMN].mean() < 1


def test_order_with_many_categories_is_summarised(warehouse, config, rows):
    orders = rows.ORDERS + [
        (502, 5, "2025-02-20 10:00", "completed", 99.0, ["toys", "books", "shoes", "books", "garden"])
    ]
    rows.load(warehouse, rows.frames(orders=orders))
    text = _row(build_features(warehouse, config, [CUTOFF]), 5)[TEXT_COLUMN]
    assert text == "[1d ago] order 10.00 completed: toys | [9d ago] order 99.00 completed: books, toys +2 more"
