"""Sample-data generator: determinism, contract validity, learnable churn signal, drift."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipelines.contract import EVENT_TYPES, ORDER_STATUSES, RAW_TABLES
from pipelines.data.generator import generate_sample_data
from pipelines.warehouse import connect

START, END = dt.date(2023, 1, 1), dt.date(2025, 6, 30)
CUTOFF = pd.Timestamp("2024-07-01", tz="UTC")
# Phrases of intent to leave; the generator writes them in many forms, under any star rating.
LEAVE_WORDS = (
    r"last order|last time i order|last purchase|final order|competitor|not coming back|i'm done|"
    r"somewhere else|closing my account|losing patience|not sure i will|taking my business"
)


def _frames(wh) -> dict[str, pd.DataFrame]:
    out = {}
    for table in RAW_TABLES:
        keys = ", ".join(f'"{c}"' for c in table.primary_key)
        out[table.name] = wh.query_df(f"SELECT * FROM {wh.qualified(table.name)} ORDER BY {keys}")
    return out


def _generate(customers: int, seed: int, start=START, end=END, **kwargs):
    with connect("duckdb:///:memory:") as wh:
        wh.init_schema()
        counts = generate_sample_data(wh, customers=customers, seed=seed, start=start, end=end, **kwargs)
        return counts, _frames(wh)


@pytest.fixture(scope="module")
def sample():
    return _generate(1000, seed=7, chunk_customers=400)  # three chunks


def test_every_table_gets_rows_and_counts_are_reported(sample):
    counts, frames = sample
    for table in RAW_TABLES:
        assert counts[table.name] == len(frames[table.name]) > 0, table.name
    assert len(frames["products"]) >= 300
    assert frames["products"]["category"].nunique() == 8
    per_customer = len(frames["orders"]) / 1000
    assert 8 <= per_customer <= 25
    assert 60 <= len(frames["events"]) / 1000 <= 250


def test_same_seed_gives_identical_data_and_another_seed_does_not():
    kwargs = {"start": dt.date(2024, 1, 1), "end": dt.date(2024, 12, 31), "chunk_customers": 40}
    _, first = _generate(70, seed=3, **kwargs)
    _, again = _generate(70, seed=3, **kwargs)
    _, other = _generate(70, seed=4, **kwargs)
    for name in first:
        pd.testing.assert_frame_equal(first[name], again[name])
    assert not first["orders"].equals(other["orders"])
    assert not first["reviews"]["review_text"].equals(other["reviews"]["review_text"])


def test_data_fits_the_contract(sample):
    _, f = sample
    customers, orders, items, events, reviews = (
        f[n] for n in ("customers", "orders", "order_items", "events", "reviews")
    )
    assert customers["customer_id"].tolist() == list(range(1, 1001))  # unique across chunks
    for name in ("orders", "events", "reviews"):
        assert f[name].iloc[:, 0].is_unique, name
    assert not items.duplicated(["order_id", "line_number"]).any()
    assert reviews["rating"].between(1, 5).all()
    assert (orders["total_amount"] >= 0).all() and (items["unit_price"] >= 0).all() and (items["quantity"] >= 1).all()
    assert set(orders["status"]) == set(ORDER_STATUSES)
    assert set(events["event_type"]) == set(EVENT_TYPES)
    lo, hi = pd.Timestamp(START, tz="UTC"), pd.Timestamp(END + dt.timedelta(days=1), tz="UTC")
    for frame, col in (
        (customers, "signup_at"),
        (orders, "ordered_at"),
        (events, "event_at"),
        (reviews, "reviewed_at"),
    ):
        assert str(frame[col].dt.tz) in ("UTC", "Etc/UTC"), col
        assert frame[col].min() >= lo and frame[col].max() < hi, col
    # foreign keys and totals
    assert orders["customer_id"].isin(customers["customer_id"]).all()
    assert events["customer_id"].isin(customers["customer_id"]).all()
    assert items["product_id"].isin(f["products"]["product_id"]).all()
    line_totals = (items["quantity"] * items["unit_price"]).groupby(items["order_id"]).sum()
    np.testing.assert_allclose(
        orders.set_index("order_id")["total_amount"], line_totals.loc[orders["order_id"]], atol=0.011
    )
    # no order before its customer existed
    signup = orders["customer_id"].map(customers.set_index("customer_id")["signup_at"])
    assert (orders["ordered_at"] >= signup).all()
    # optional demographics are sometimes missing
    assert 0 < customers["birth_year"].isna().mean() < 0.5 and 0 < customers["gender"].isna().mean() < 0.5


def _labels(orders: pd.DataFrame, cutoff: pd.Timestamp) -> pd.Series:
    """customer_id -> churned, for customers with a completed order in the year before the cutoff."""
    done = orders[orders["status"] == "completed"]
    before = done[(done["ordered_at"] < cutoff) & (done["ordered_at"] >= cutoff - pd.Timedelta(days=365))]
    after = done[(done["ordered_at"] >= cutoff) & (done["ordered_at"] < cutoff + pd.Timedelta(days=90))]
    population = before["customer_id"].unique()
    return pd.Series(~np.isin(population, after["customer_id"].unique()), index=population, name="churned")


def _before(frame: pd.DataFrame, col: str, days: int = 365) -> pd.DataFrame:
    return frame[(frame[col] < CUTOFF) & (frame[col] >= CUTOFF - pd.Timedelta(days=days))]


def test_churn_rate_is_realistic(sample):
    _, f = sample
    labels = _labels(f["orders"], CUTOFF)
    assert len(labels) > 200
    assert 0.25 <= labels.mean() <= 0.45


def test_churners_show_warning_signs_beforehand(sample):
    _, f = sample
    labels = _labels(f["orders"], CUTOFF)
    reviews = _before(f["reviews"], "reviewed_at").join(labels, on="customer_id", how="inner")
    reviews["leave"] = reviews["review_text"].str.lower().str.contains(LEAVE_WORDS)
    by_review = reviews.groupby("churned")[["rating", "leave"]].mean()
    assert by_review.loc[True, "rating"] < by_review.loc[False, "rating"] - 0.1
    assert by_review.loc[True, "leave"] > 2 * by_review.loc[False, "leave"]

    orders = _before(f["orders"], "ordered_at").join(labels, on="customer_id", how="inner")
    orders["cancelled"] = orders["status"] == "cancelled"
    cancel_rate = orders.groupby("churned")["cancelled"].mean()
    assert cancel_rate[True] > cancel_rate[False]

    events = _before(f["events"], "event_at").join(labels, on="customer_id", how="inner")
    events = events.assign(cart=events["event_type"] == "add_to_cart", checkout=events["event_type"] == "checkout")
    sessions = events.groupby(["churned", "session_id"])[["cart", "checkout"]].max().reset_index()
    carts = sessions[sessions["cart"]]
    abandoned = (~carts["checkout"]).groupby(carts["churned"]).mean()
    assert abandoned[True] > abandoned[False] + 0.05


def test_review_text_carries_signal_that_stars_miss(sample):
    _, f = sample
    labels = _labels(f["orders"], CUTOFF)
    reviews = _before(f["reviews"], "reviewed_at").join(labels, on="customer_id", how="inner")
    happy_stars = reviews[reviews["rating"] >= 4]
    leave = happy_stars["review_text"].str.lower().str.contains(LEAVE_WORDS).groupby(happy_stars["churned"]).mean()
    assert leave[True] > 1.5 * leave[False]
    # and bad stars with a resolved problem ("support fixed it quickly, will order again") exist
    low = f["reviews"][f["reviews"]["rating"] <= 2]["review_text"].str.lower()
    assert low.str.contains("will order again|i'll be back|keep ordering|no hard feelings|still my").any()


def test_review_texts_are_varied_and_cover_topics(sample):
    texts = sample[1]["reviews"]["review_text"].str.lower()
    assert texts.nunique() / len(texts) > 0.6
    for words in (
        "late|delivery took|waited",
        "damaged|broken|cracked",
        "size|fit",
        "overpriced|expensive|cheaper",
        "support|customer service",
        "quality|well made|sturdy",
        "fast|quick",
    ):
        assert texts.str.contains(words).mean() > 0.02, words


def test_drift_raises_prices_after_the_date():
    kwargs = {"start": dt.date(2024, 1, 1), "end": dt.date(2024, 12, 31)}
    drift_day = pd.Timestamp("2024-07-01", tz="UTC")

    def price_ratio(frames):
        items = frames["order_items"].merge(frames["orders"][["order_id", "ordered_at"]], on="order_id")
        after = items["ordered_at"] >= drift_day
        return items.loc[after, "unit_price"].mean() / items.loc[~after, "unit_price"].mean()

    _, plain = _generate(250, seed=5, **kwargs)
    _, drifted = _generate(250, seed=5, drift_after=dt.date(2024, 6, 30), **kwargs)
    assert price_ratio(drifted) > price_ratio(plain) + 0.08
    assert drifted["products"]["price"].mean() > 1.1 * plain["products"]["price"].mean()


def test_bad_arguments_are_rejected():
    with connect("duckdb:///:memory:") as wh:
        wh.init_schema()
        with pytest.raises(ValueError, match="before end"):
            generate_sample_data(wh, customers=5, seed=1, start=END, end=START)
        with pytest.raises(ValueError, match="drift_after"):
            generate_sample_data(wh, customers=5, seed=1, start=START, end=END, drift_after=dt.date(2030, 1, 1))


def test_generate_replaces_contents_on_each_backend(warehouse):
    kwargs = {"customers": 40, "seed": 11, "start": dt.date(2024, 1, 1), "end": dt.date(2024, 6, 30)}
    first = generate_sample_data(warehouse, **kwargs, chunk_customers=15)
    second = generate_sample_data(warehouse, **kwargs, chunk_customers=15)  # replaces, never appends
    assert first == second
    for table, rows in second.items():
        assert warehouse.row_count(table) == rows > 0, table
    tz_ok = warehouse.scalar(
        warehouse.render("SELECT COUNT(*) FROM {orders} WHERE ordered_at < :lo OR ordered_at >= :hi"),
        {"lo": dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "hi": dt.datetime(2024, 7, 1, tzinfo=dt.UTC)},
    )
    assert tz_ok == 0


def test_cli_generate_prints_row_counts(tmp_path, monkeypatch, capsys):
    from pipelines.cli.main import main

    monkeypatch.setenv("CHURN_WAREHOUSE_URL", f"duckdb:///{tmp_path}/cli.duckdb")
    rc = main(
        [
            "generate",
            "--customers",
            "30",
            "--seed",
            "2",
            "--start",
            "2024-01-01",
            "--end",
            "2024-03-31",
            "--drift-after",
            "2024-03-01",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "drift after 2024-03-01" in out
    for table in RAW_TABLES:
        assert table.name in out
    with connect(f"duckdb:///{tmp_path}/cli.duckdb") as wh:
        assert wh.row_count("customers") == 30


def test_a_failure_midway_leaves_the_previous_contents(warehouse, monkeypatch):
    from pipelines.data import generator

    kwargs = {"seed": 11, "start": dt.date(2024, 1, 1), "end": dt.date(2024, 6, 30), "chunk_customers": 10}
    before = generate_sample_data(warehouse, customers=20, **kwargs)
    calls = {"n": 0}
    original = generator._ChunkSimulator.reviews

    def fail_on_second_chunk(self):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("boom")
        return original(self)

    monkeypatch.setattr(generator._ChunkSimulator, "reviews", fail_on_second_chunk)
    with pytest.raises(RuntimeError, match="boom"):
        generate_sample_data(warehouse, customers=40, **kwargs)
    assert {t: warehouse.row_count(t) for t in before} == before
    assert not warehouse.table_exists("_staging_orders")
