"""Direct identifiers: masked in text views (planted examples), pseudonymised ids keyed and stable."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipelines.features import TEXT_COLUMN, build_features
from pipelines.features.privacy import (
    AIRFLOW_CONN_ENV,
    KEY_ENV,
    PseudonymKeyError,
    find_identifiers,
    mask_identifiers,
    pseudonym_key,
    pseudonymise_frame,
    pseudonymise_ids,
)

PLANTED = {
    "mail me at jane.doe+x@mail.example.co.uk please": "mail me at [email] please",
    "card 4111 1111 1111 1111 was charged twice": "card [card] was charged twice",
    "card 4111-1111-1111-1111 again": "card [card] again",
    "call +44 20 7946 0958 or (555) 201-3344": "call [phone] or [phone]",
    "ring 5552013344 tomorrow": "ring [phone] tomorrow",
    "send it to 221B Baker Street, London": "send it to [address], London",
    "now at 12 Elm Rd. thanks": "now at [address] thanks",
    "Lieferung an Hauptstraße 12 kam nie": "Lieferung an [address] kam nie",
}
# What a text view holds that must survive: amounts, day counts, ratings, counts.
HARMLESS = [
    "[259d ago] order 1234.56 completed: books | [19d ago] order 20.00 returned: shoes | [3d ago] support contact x2",
    '[4d ago] review 2/5 "arrived in 2 days, 10 out of 10, paid 1500 for it, 3 Way adapter"',
    "[1d ago] abandoned cart: shoes, toys +2 more",
]


@pytest.mark.parametrize("text,masked", PLANTED.items())
def test_planted_identifiers_are_masked(text, masked):
    assert mask_identifiers(text) == masked
    assert find_identifiers(mask_identifiers(text)) == []


@pytest.mark.parametrize("text", HARMLESS)
def test_text_view_numbers_are_kept(text):
    assert mask_identifiers(text) == text


def test_text_views_from_the_warehouse_are_masked(loaded, rows):
    """A review with an e-mail, a phone and a card number reaches the text view masked; stars stay."""
    data = rows.frames(
        reviews=[
            *rows.REVIEWS,
            (9, 1, 12, 1, "late again, call me +49 170 1234567 or write bob.smith@example.org", "2025-02-27 10:00"),
        ]
    )
    loaded.execute(loaded.render("DELETE FROM {reviews}"))
    loaded.bulk_load("reviews", data["reviews"])
    config = _config_for(loaded)
    frame = build_features(loaded, config, [rows.CUTOFF], labels=False)
    view = frame.loc[frame["customer_id"] == 1, TEXT_COLUMN].item()
    assert 'review 1/5 "late again, call me [phone] or write [email]"' in view
    assert "example.org" not in view and "1234567" not in view
    assert "order 54.90 completed" in view  # the rest of the view is untouched


def _config_for(warehouse):
    from pipelines.config import Config

    return Config().with_overrides({"warehouse": {"schema_name": warehouse.schema}})


def test_generated_sample_data_plants_identifiers_that_no_text_view_shows(tmp_path):
    from pipelines.config import Config
    from pipelines.data.generator import generate_sample_data
    from pipelines.warehouse import connect

    with connect(f"duckdb:///{tmp_path}/w.duckdb") as wh:
        wh.init_schema()
        generate_sample_data(wh, customers=300, seed=3, start=dt.date(2024, 1, 1), end=dt.date(2025, 3, 1))
        raw = wh.query_df(wh.render("SELECT review_text FROM {reviews}"))["review_text"].dropna()
        frame = build_features(wh, Config(), [dt.date(2025, 3, 1)], labels=False)
    planted = raw[raw.map(lambda t: bool(find_identifiers(t)))]
    assert len(planted) >= 3, "the generator should plant a few contact details"
    assert raw.str.contains("@example.com").any()
    leaks = [t for t in frame[TEXT_COLUMN] if find_identifiers(t)]
    assert leaks == []
    assert not frame[TEXT_COLUMN].str.contains("@example.com|\\+44 20", regex=True).any()


def test_pseudonyms_are_keyed_stable_and_distinct():
    ids = np.array([1, 2, 3, 1], dtype=np.int64)
    a = pseudonymise_ids(ids, b"k" * 32)
    assert a[0] == a[3] and len(set(a[:3].tolist())) == 3
    assert (a > 0).all() and a.dtype == np.int64
    assert not np.array_equal(a, pseudonymise_ids(ids, b"j" * 32))  # another key, other pseudonyms
    assert not set(a.tolist()) & {1, 2, 3}
    frame = pseudonymise_frame(pd.DataFrame({"customer_id": ids, "x": [0.1] * 4}), b"k" * 32)
    assert frame["customer_id"].tolist() == a.tolist() and frame["x"].tolist() == [0.1] * 4


def test_key_from_env_airflow_connection_or_a_created_file(monkeypatch, config):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(AIRFLOW_CONN_ENV, raising=False)
    monkeypatch.setenv(KEY_ENV, "s" * 20)
    assert pseudonym_key(config) == b"s" * 20
    monkeypatch.delenv(KEY_ENV)
    monkeypatch.setenv(AIRFLOW_CONN_ENV, "generic://user:p%40sswordpassword1234@host")
    assert pseudonym_key(config) == b"p@sswordpassword1234"
    monkeypatch.setenv(AIRFLOW_CONN_ENV, '{"conn_type": "generic", "password": "from-json-connection"}')
    assert pseudonym_key(config) == b"from-json-connection"
    monkeypatch.delenv(AIRFLOW_CONN_ENV)
    created = pseudonym_key(config)
    assert len(created) >= 32 and pseudonym_key(config) == created  # created once, then reused
    assert (config.resolve_path(config.privacy.key_file).stat().st_mode & 0o777) == 0o600
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(PseudonymKeyError, match="CHURN_PSEUDONYM_KEY"):
        pseudonym_key(config)
