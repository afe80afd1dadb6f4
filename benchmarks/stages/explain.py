"""Stage explain: reasons per second (churn_score_reasons) and identifier masking, at the run's scale.

- LightGBM reasons: every customer of the score date (pred_contrib + grouped phrases, top 3), timed as the
  scoring job runs them (``explain_rows`` over the whole population frame).
- Transformer reasons: numeric gradient x input plus text-item occlusion (``explain.max_text_items`` extra
  forward passes per customer) on ``--score-limit`` customers with the trained bundle (or the stand-in).
- Masking: ``mask_identifiers`` over every text view of the population (it runs in every feature build).
- Segment stability: segments fitted 30 days before the score date, assigned on the score date and the next day
  (no data after the score date): share keeping their segment with the scoring rule and with the bare nearest
  centroid.
- Sentiment: the head on the packaged encoder, held-out accuracy on ``SENTIMENT_REVIEWS`` sampled reviews.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from benchmarks.common import Context, StageResult, require
from benchmarks.stages.data import ensure_data, open_duckdb, score_date

logger = logging.getLogger("benchmarks.explain")
SENTIMENT_REVIEWS = 3000


def _segments(ctx: Context, config, day, predictor, result: StageResult) -> None:
    import datetime as dt

    from pipelines.features import build_features
    from pipelines.models.segments import fit_segments

    next_day = day + dt.timedelta(days=1)
    with open_duckdb(ctx) as wh:
        fit = build_features(wh, config, [day - dt.timedelta(days=30)], labels=False)
        frames = build_features(wh, config, [day, next_day], labels=False)
        active = wh.query_df(
            wh.render(
                "SELECT customer_id FROM {orders} WHERE ordered_at >= :s AND ordered_at < :e UNION "
                "SELECT customer_id FROM {events} WHERE event_at >= :s AND event_at < :e UNION "
                "SELECT customer_id FROM {reviews} WHERE reviewed_at >= :s AND reviewed_at < :e"
            ),
            {"s": f"{day} 00:00:00+00", "e": f"{next_day} 00:00:00+00"},
        )["customer_id"]
    model = fit_segments(fit, predictor.feature_names, n_segments=config.segments.n_segments, seed=0)
    first = frames[frames["cutoff_date"] == day].set_index("customer_id")
    second = frames[frames["cutoff_date"] == next_day].set_index("customer_id")
    common = first.index.intersection(second.index)
    a = model.predict(first.loc[common])
    bare = model.predict(second.loc[common])
    kept = np.where(common.isin(active), model.predict(second.loc[common], previous=a), a)
    result.add("segment_stability", float((kept == a).mean()), "share", "same segment next day, unchanged data")
    result.add("segment_stability_bare", float((bare == a).mean()), "share", "bare nearest centroid, no rule")
    result.info["segment_customers"] = len(common)
    result.info["segment_active_next_day"] = int(common.isin(active).sum())
    result.info["segment_names"] = model.names


def _sentiment(ctx: Context, config, result: StageResult) -> None:
    from pipelines.models.network import resolve_encoder_path
    from pipelines.models.sentiment import encode_texts, train_sentiment

    with open_duckdb(ctx) as wh:
        reviews = wh.query_df(
            wh.render(
                "SELECT rating, review_text FROM {reviews} WHERE review_text IS NOT NULL AND rating <> 3 "
                "ORDER BY review_id"
            )
        )
    reviews = reviews.sample(n=min(SENTIMENT_REVIEWS, len(reviews)), random_state=0)
    start = time.perf_counter()
    emb = encode_texts(reviews["review_text"].tolist(), resolve_encoder_path(config.model.encoder))
    head = train_sentiment(emb, reviews["rating"].to_numpy(), encoder=config.model.encoder)
    result.add("sentiment_heldout_accuracy", head.report["heldout_accuracy"], "share", "held-out, stars as labels")
    result.add("sentiment_majority_accuracy", head.report["heldout_majority_class_accuracy"], "share", "majority class")
    result.add("sentiment_reviews_per_s", len(reviews) / (time.perf_counter() - start), "reviews/s", "encode + fit")
    result.info["sentiment"] = head.report


def run(ctx: Context) -> StageResult:
    from benchmarks.bundles import (
        find_trained_bundle,
        labelled_frame,
        standin_baseline_bundle,
        standin_transformer_bundle,
    )
    from pipelines.features.privacy import mask_text_column
    from pipelines.models import load_bundle
    from pipelines.scoring.reasons import explain_rows

    ensure_data(ctx)
    config = ctx.config()
    day = score_date(config)
    result = StageResult("explain", repeat=1)
    build_features = require("pipelines.features", "build_features")
    with open_duckdb(ctx) as wh:
        frame = build_features(wh, config, [day], labels=False)
    fit_frame, fit_labels, _ = labelled_frame(ctx, config, 384)

    baseline = load_bundle(standin_baseline_bundle(ctx, config, fit_frame, fit_labels))
    p = baseline.predict_proba(frame)
    start = time.perf_counter()
    reasons = explain_rows(baseline, frame, p, top_k=config.explain.reasons_per_customer)
    seconds = time.perf_counter() - start
    result.add(
        "lightgbm_customers_per_s", len(frame) / seconds, "customers/s", "LightGBM: top-3 reasons, all customers"
    )
    result.add("lightgbm_reasons_per_s", len(reasons) / seconds, "reasons/s", "LightGBM reason rows written per second")
    result.info["lightgbm_customers"] = len(frame)
    result.info["lightgbm_reason_codes"] = reasons["reason_code"].value_counts().head(8).to_dict()

    bundle = find_trained_bundle(ctx) or str(standin_transformer_bundle(ctx, config, fit_frame, fit_labels))
    transformer = load_bundle(bundle, precision=config.scoring.precision)
    sample = frame.head(ctx.score_limit).reset_index(drop=True)
    start = time.perf_counter()
    p = transformer.predict_proba(sample)
    seconds = time.perf_counter() - start
    result.add(
        "transformer_predict_customers_per_s",
        len(sample) / seconds,
        "customers/s",
        "the same customers' scores alone, same run (the reasons' cost is relative to this)",
    )
    for label, with_text in (("numeric", np.zeros(len(sample), bool)), ("numeric_text", np.ones(len(sample), bool))):
        start = time.perf_counter()
        rows = explain_rows(
            transformer,
            sample,
            p,
            top_k=config.explain.reasons_per_customer,
            with_text=with_text,
            max_text_items=config.explain.max_text_items,
        )
        seconds = time.perf_counter() - start
        result.add(
            f"transformer_{label}_customers_per_s",
            len(sample) / seconds,
            "customers/s",
            f"transformer ({transformer.precision}): top-3 reasons, {label.replace('_', ' + ')} attribution",
        )
        result.info[f"transformer_{label}_text_reasons"] = int(rows["feature"].eq("text_view").sum())
    result.info["transformer_customers"] = len(sample)
    result.info["transformer_bundle"] = bundle

    _segments(ctx, config, day, baseline, result)
    _sentiment(ctx, config, result)

    texts = frame["text_view"]
    start = time.perf_counter()
    mask_text_column(texts)
    seconds = time.perf_counter() - start
    result.add("mask_text_views_per_s", len(texts) / seconds, "views/s", "identifier masking of text views")
    return result
