"""Reasons per customer: behaviour under history changes, phrases, text occlusion, value and change columns."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipelines.config import Config
from pipelines.features import build_features, numeric_feature_names
from pipelines.scoring.reasons import (
    expected_revenue,
    explain_rows,
    group_features,
    percentile_rank,
    probability_change,
    text_item_reason,
)

CUTOFF = dt.date(2025, 3, 1)


def _ts(days_before: float) -> pd.Timestamp:
    return pd.Timestamp(CUTOFF.isoformat(), tz="UTC") - pd.Timedelta(days=days_before) + pd.Timedelta(hours=10)


@pytest.fixture(scope="module")
def lgbm_predictor():
    """A real LightGBM bundle's predictor, trained on synthetic rows where staying away and bad reviews churn."""
    import lightgbm as lgb

    from pipelines.models import BaselinePredictor, Calibrator

    names = numeric_feature_names(Config())
    rng = np.random.default_rng(0)
    n = 2500
    x = pd.DataFrame({f: rng.gamma(2.0, 2.0, n) for f in names if not f.startswith("sentiment_")})
    x["days_since_last_order"] = rng.exponential(30, n)
    x["reviews_365d"] = rng.poisson(1.0, n).astype(float)
    x["low_rating_share_365d"] = np.where((x["reviews_365d"] > 0) & (rng.random(n) < 0.3), rng.random(n), 0.0)
    x["mean_rating_365d"] = np.where(x["reviews_365d"] > 0, 5 - 4 * x["low_rating_share_365d"], 0.0)
    # no review_sentiment rows in these warehouses: the sentiment features hold their neutral fill values
    x = x.assign(sentiment_mean_365d=0.5, sentiment_last=0.5, sentiment_disagree_share_365d=0.0)
    logit = -1.5 + 0.05 * (x["days_since_last_order"] - 30) + 3.0 * x["low_rating_share_365d"]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 15, "learning_rate": 0.1, "verbose": -1, "seed": 0, "num_threads": 1},
        lgb.Dataset(x[names].to_numpy(), y),
        num_boost_round=60,
    )
    return BaselinePredictor(booster, names, Calibrator("identity"))


def _history(wh, *, recent_order: bool = False, bad_review: bool = True) -> None:
    """Customer 1: orders every 21 days until 74 days ago; a 1-star review 4 days ago; customer 2: a regular."""
    customers = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "signup_at": [_ts(600), _ts(600)],
            "country": ["DE", "DE"],
            "acquisition_channel": ["organic", "organic"],
        }
    )
    ages = [74 + 21 * k for k in range(9)] + ([2] if recent_order else [])
    orders = [(100 + i, 1, _ts(a)) for i, a in enumerate(ages)] + [(200 + i, 2, _ts(3 + 20 * i)) for i in range(8)]
    frame = pd.DataFrame(
        {
            "order_id": [o for o, _, _ in orders],
            "customer_id": [c for _, c, _ in orders],
            "ordered_at": [t for _, _, t in orders],
            "status": "completed",
            "total_amount": 40.0,
        }
    )
    items = pd.DataFrame(
        {"order_id": frame["order_id"], "line_number": 1, "category": "books", "quantity": 1, "unit_price": 40.0}
    )
    reviews = [(1, 1, 5, "great read", _ts(200))]
    if bad_review:
        reviews.append((2, 1, 1, "parcel arrived late and damaged", _ts(4)))
    wh.bulk_load("customers", customers)
    wh.bulk_load("orders", frame)
    wh.bulk_load("order_items", items)
    wh.bulk_load(
        "reviews",
        pd.DataFrame(
            [
                {"review_id": r, "customer_id": c, "rating": g, "review_text": t, "reviewed_at": at}
                for r, c, g, t, at in reviews
            ]
        ),
    )


def _customer(tmp_path, name: str, **history) -> pd.DataFrame:
    from pipelines.warehouse import connect

    with connect(f"duckdb:///{tmp_path}/{name}.duckdb") as wh:
        wh.init_schema()
        _history(wh, **history)
        frame = build_features(wh, Config(), [CUTOFF], labels=False)
    return frame[frame["customer_id"] == 1].reset_index(drop=True)


def _reasons(predictor, frame: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    p = predictor.predict_proba(frame)
    return float(p[0]), explain_rows(predictor, frame, p, top_k=3)


def test_removing_the_negative_review_removes_that_reason_and_lowers_the_score(tmp_path, lgbm_predictor):
    p_with, with_review = _reasons(lgbm_predictor, _customer(tmp_path, "a"))
    p_without, without = _reasons(lgbm_predictor, _customer(tmp_path, "b", bad_review=False))
    assert "low_ratings" in with_review["reason_code"].tolist()
    row = with_review[with_review["reason_code"] == "low_ratings"].iloc[0]
    assert row["text"] == "mean rating 3.0/5 over 2 reviews in a year" and row["contribution"] > 0
    assert "low_ratings" not in without["reason_code"].tolist()
    assert p_without < p_with


def test_a_recent_order_removes_the_recency_reason(tmp_path, lgbm_predictor):
    p_before, before = _reasons(lgbm_predictor, _customer(tmp_path, "c"))
    p_after, after = _reasons(lgbm_predictor, _customer(tmp_path, "d", recent_order=True))
    recency = before[before["reason_code"] == "recency"]
    assert len(recency) == 1 and recency.iloc[0]["rank"] == 1
    assert recency.iloc[0]["text"].startswith("no order in 74 days; usually every ")
    assert recency.iloc[0]["feature"] == "days_since_last_order" and recency.iloc[0]["value"] == pytest.approx(
        73.6, 0.01
    )
    assert "recency" not in after["reason_code"].tolist()
    assert p_after < p_before


def test_reasons_are_ranked_positive_and_at_most_k(tmp_path, lgbm_predictor):
    frame = _customer(tmp_path, "e")
    _, reasons = _reasons(lgbm_predictor, frame)
    assert reasons["rank"].tolist() == list(range(1, len(reasons) + 1)) and len(reasons) <= 3
    assert (reasons["contribution"] > 0).all()
    assert reasons["contribution"].is_monotonic_decreasing


def test_every_feature_belongs_to_one_group():
    names = numeric_feature_names(Config()) + ["sentiment_mean_365d", "brand_new_feature"]
    groups = group_features(names)
    indexes = sorted(i for _, idx, _ in groups for i in idx)
    assert indexes == list(range(len(names)))
    codes = [code for code, _, _ in groups]
    assert {"recency", "frequency_drop", "spend_drop", "low_ratings", "support"} <= set(codes)
    assert "review_sentiment" in codes and "brand_new_feature" in codes
    rhythm = next(idx for code, idx, _ in groups if code == "purchase_rhythm")
    assert {names[i] for i in rhythm} == {
        "btyd_frequency",
        "btyd_recency_days",
        "btyd_age_days",
        "median_gap_days",
        "overdue_ratio",
        "bgnbd_expected_purchases",
        "bgnbd_p_alive",
    }


def test_purchase_rhythm_phrase():
    phrase = next(p for code, _, p in group_features(["overdue_ratio"]) if code == "purchase_rhythm")
    assert phrase({"overdue_ratio": 2.5, "median_gap_days": 30.0, "bgnbd_p_alive": 0.4}) == (
        "2.5x overdue: usually buys every 30 days; 40% chance still active (BG/NBD)"
    )
    assert phrase({"overdue_ratio": -1.0}) == "one purchase day so far"


def test_text_item_phrases():
    assert text_item_reason('[4d ago] review 2/5 "parcel arrived late"') == (
        "review_text",
        "text_view",
        'review 2/5 "parcel arrived late" 4 days ago',
    )
    assert text_item_reason("[1d ago] abandoned cart: shoes")[0] == "cart_text"
    assert text_item_reason("[6d ago] order 54.90 returned: books")[2] == "order 54.90 returned: books 6 days ago"


@pytest.fixture
def tiny_transformer(tiny_training_config):
    import torch

    from pipelines.models import Calibrator, NumericScaler, TransformerPredictor, build_churn_model
    from pipelines.models.network import load_tokenizer
    from tests.helpers.synthetic import FEATURES, make_customers

    frame = make_customers(40, seed=1)
    torch.manual_seed(0)
    model = build_churn_model(tiny_training_config.model, len(FEATURES))
    predictor = TransformerPredictor(
        model,
        load_tokenizer(tiny_training_config.model.encoder),
        NumericScaler.fit(frame, FEATURES),
        Calibrator("identity"),
        max_length=64,
        device="cpu",
    )
    return predictor, frame


def test_transformer_numeric_attribution_is_gradient_times_input(tiny_transformer):
    import torch

    predictor, frame = tiny_transformer
    from pipelines.models.explain import numeric_contributions

    first = predictor.model.head.mlp[0]
    with torch.no_grad():  # only the first numeric feature reaches the head
        first.weight[:, predictor.model.head.text_dim + 1 :] = 0.0
    contrib = numeric_contributions(predictor, frame).contributions
    assert contrib.shape == (len(frame), len(predictor.feature_names))
    assert np.abs(contrib[:, 1:]).max() == 0.0 and np.abs(contrib[:, 0]).max() > 0
    z = predictor.scaler.transform(frame)[:, 0]
    assert np.all(contrib[z == 0, 0] == 0)  # a feature at its training mean contributes nothing


def test_transformer_text_occlusion_finds_the_review_that_raises_the_risk(tiny_transformer):
    predictor, frame = tiny_transformer
    row = frame.head(1).copy()
    review = '[4d ago] review 1/5 "parcel arrived late and damaged"'
    row["text_view"] = f"[2d ago] abandoned cart: shoes | {review} | [9d ago] order 20.00 completed: books"
    # the text effect is what this test is about: the stand-in probability reads only the review
    predictor.predict_proba = lambda f: np.where(f["text_view"].str.contains("review 1/5"), 0.8, 0.3)
    p = predictor.predict_proba(row)
    reasons = explain_rows(predictor, row, p, top_k=3, with_text=np.array([True]))
    text = reasons[reasons["reason_code"] == "review_text"]
    assert len(text) == 1 and text.iloc[0]["text"] == 'review 1/5 "parcel arrived late and damaged" 4 days ago'
    assert text.iloc[0]["contribution"] == pytest.approx(0.5) and text.iloc[0]["rank"] == 1
    row["text_view"] = "[2d ago] abandoned cart: shoes | [9d ago] order 20.00 completed: books"
    again = explain_rows(predictor, row, predictor.predict_proba(row), top_k=3, with_text=np.array([True]))
    assert "review_text" not in again["reason_code"].tolist()
    assert not again["reason_code"].isin(["cart_text", "order_text"]).any()  # removing them changes nothing


def test_value_rank_and_change():
    frame = pd.DataFrame({"revenue_30d": [10.0, 0.0], "revenue_365d": [365.0, 73.0]})
    np.testing.assert_allclose(expected_revenue(frame, 90), [90.0, 18.0])
    np.testing.assert_allclose(percentile_rank(np.array([0.2, 0.9, 0.5, 0.2])), [0, 1, 2 / 3, 0])
    previous = pd.DataFrame({"customer_id": [3, 1], "churn_probability": [0.5, 0.1]})
    change = probability_change(np.array([1, 2, 3]), np.array([0.4, 0.4, 0.4]), previous)
    np.testing.assert_allclose(change, [0.3, np.nan, -0.1])


def _table(config, name: str, day) -> pd.DataFrame:
    from pipelines.warehouse import open_warehouse

    with open_warehouse(config) as wh:
        return wh.query_df(
            wh.render(f"SELECT * FROM {{{name}}} WHERE score_date = :d ORDER BY customer_id"), {"d": day}
        )


def test_scoring_writes_reasons_value_rank_and_change(tiny_config, standins, monkeypatch, lgbm_predictor):
    """The real scoring job with a real LightGBM predictor: reasons for the reason tiers, same score_date."""
    from pipelines.scoring import score_customers

    standins.install_standin(monkeypatch, lgbm_predictor)
    config = tiny_config.with_overrides({"scoring": {"chunk_rows": 37}, "explain": {"reason_tiers": ["high"]}})
    day, next_day = standins.SCORE_DATE, standins.SCORE_DATE + dt.timedelta(days=1)
    result = score_customers(config, day, "3", "manual__a")
    scores, reasons = _table(config, "churn_scores", day), _table(config, "churn_score_reasons", day)
    high = scores[scores["risk_tier"] == "high"]
    assert len(high) > 5 and result["customers_explained"] == len(high)
    per_customer = reasons.groupby("customer_id")["rank"].apply(list)
    assert set(per_customer.index) == set(high["customer_id"])  # only the configured tier
    assert all(ranks == [1, 2, 3] for ranks in per_customer)  # every high-tier customer: 3 reasons
    assert (reasons["contribution"] > 0).all() and reasons["text"].str.len().gt(5).all()
    assert (scores["tier_rank"] == scores["risk_tier"].map({"low": 0, "medium": 1, "high": 2})).all()
    np.testing.assert_allclose(scores["value_at_risk"], scores["churn_probability"] * scores["expected_revenue"])
    assert scores["percentile_rank"].between(0, 1).all()
    top = scores["churn_probability"] == scores["churn_probability"].max()  # LightGBM leaves can tie at the top
    assert (scores.loc[top, "percentile_rank"] == (len(scores) - top.sum()) / (len(scores) - 1)).all()
    assert scores["probability_change"].isna().all()  # no earlier score date

    again = score_customers(config, day, "3", "manual__b")  # a rerun replaces the day's reasons
    assert len(_table(config, "churn_score_reasons", day)) == len(reasons) and again["reasons"] == len(reasons)
    score_customers(config, next_day, "3", "manual__c")
    later = _table(config, "churn_scores", next_day).set_index("customer_id")
    base = scores.set_index("customer_id")
    common = later.index.intersection(base.index)
    np.testing.assert_allclose(
        later.loc[common, "probability_change"],
        later.loc[common, "churn_probability"] - base.loc[common, "churn_probability"],
    )


def test_a_warehouse_from_before_the_value_columns_is_upgraded(tiny_config, standins, monkeypatch, lgbm_predictor):
    from pipelines.scoring import score_customers
    from pipelines.warehouse import open_warehouse

    with open_warehouse(tiny_config) as wh:  # what an older version created
        wh.execute(wh.render("DROP VIEW IF EXISTS {churn_scores_latest}"))
        wh.execute(wh.render("DROP TABLE {churn_score_reasons}"))
        for column in ("expected_revenue", "value_at_risk", "percentile_rank", "probability_change", "tier_rank"):
            wh.execute(wh.render(f"ALTER TABLE {{churn_scores}} DROP COLUMN {column}"))
    standins.install_standin(monkeypatch, lgbm_predictor)
    score_customers(tiny_config, standins.SCORE_DATE, "3", "manual__old")
    with open_warehouse(tiny_config) as wh:
        latest = wh.query_df(wh.render("SELECT * FROM {churn_scores_latest}"))
        assert latest["value_at_risk"].notna().all() and wh.row_count("churn_score_reasons") > 0


def test_every_scored_customer_gets_a_stable_segment(tiny_config, standins, monkeypatch, lgbm_predictor):
    """Segments from the version's segment model; two consecutive days with unchanged data: 100% keep theirs."""
    import pipelines.scoring.segments as scoring_segments
    from pipelines.models.segments import fit_segments
    from pipelines.scoring import score_customers
    from pipelines.warehouse import open_warehouse

    with open_warehouse(tiny_config) as wh:
        fit = build_features(wh, tiny_config, [standins.SCORE_DATE - dt.timedelta(days=60)], labels=False)
    model = fit_segments(fit, lgbm_predictor.feature_names, n_segments=4, seed=0)
    monkeypatch.setattr(scoring_segments, "segment_model_for", lambda config, version: model)
    standins.install_standin(monkeypatch, lgbm_predictor)
    day = dt.date(2025, 7, 10)  # after the tiny warehouse's last row (2025-06-30): nothing new between the days
    next_day = day + dt.timedelta(days=1)
    result = score_customers(tiny_config, day, "3", "manual__s1")
    scores, segments = _table(tiny_config, "churn_scores", day), _table(tiny_config, "customer_segments", day)
    assert segments["customer_id"].tolist() == scores["customer_id"].tolist()  # every scored customer
    assert set(segments["segment_name"]) <= set(model.names) and sum(result["segments"].values()) == len(scores)
    assert (segments["segment_name"] == np.array(model.names, dtype=object)[segments["segment_id"]]).all()

    score_customers(tiny_config, next_day, "3", "manual__s2")  # no new data in between
    later = _table(tiny_config, "customer_segments", next_day).set_index("customer_id")["segment_id"]
    before = segments.set_index("customer_id")["segment_id"]
    common = later.index.intersection(before.index)
    assert len(common) > 50 and (later[common] == before[common]).mean() == 1.0


def test_crm_export_has_tier_reason_segment_and_pseudonymises(
    tiny_config, standins, monkeypatch, lgbm_predictor, tmp_path, capsys
):
    import yaml

    import pipelines.scoring.segments as scoring_segments
    from pipelines.cli.main import main
    from pipelines.features.privacy import pseudonym_key, pseudonymise_ids
    from pipelines.models.segments import fit_segments
    from pipelines.scoring import score_customers
    from pipelines.warehouse import open_warehouse

    with open_warehouse(tiny_config) as wh:
        fit = build_features(wh, tiny_config, [standins.SCORE_DATE], labels=False)
    model = fit_segments(fit, lgbm_predictor.feature_names, n_segments=3, seed=0)
    monkeypatch.setattr(scoring_segments, "segment_model_for", lambda config, version: model)
    standins.install_standin(monkeypatch, lgbm_predictor)
    score_customers(tiny_config, standins.SCORE_DATE, "3", "manual__x")
    path = tmp_path / "export.yaml"
    path.write_text(yaml.safe_dump(tiny_config.model_dump(mode="json")))
    day = standins.SCORE_DATE.isoformat()
    assert (
        main(["--config", str(path), "export", "--for", "crm", "--date", day, "--output", str(tmp_path / "a.csv")]) == 0
    )
    plain = pd.read_csv(tmp_path / "a.csv")
    scores = _table(tiny_config, "churn_scores", standins.SCORE_DATE)
    assert (
        sorted(plain["customer_id"]) == sorted(scores["customer_id"]) and plain["value_at_risk"].is_monotonic_decreasing
    )
    high = plain[plain["risk_tier"] == "high"]
    assert high["top_reason"].notna().all() and plain["segment_name"].notna().all()
    assert plain["recommended_action"].isna().all()  # left for the retention package
    assert main(["--config", str(path), "export", "--date", day, "--pseudonymise"]) == 0
    from io import StringIO

    pseudo = pd.read_csv(StringIO(capsys.readouterr().out))
    assert not set(pseudo["customer_id"]) & set(plain["customer_id"])
    assert pseudo["customer_id"].tolist() == pseudonymise_ids(plain["customer_id"], pseudonym_key(tiny_config)).tolist()
    assert main(["--config", str(path), "export", "--date", "2020-01-01"]) == 8  # no scores that day: exit SCORING
