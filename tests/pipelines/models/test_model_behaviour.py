"""Behaviour of a model trained on the packaged MiniLM: risk moves the way the signal says."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipelines.training import fit_candidates
from tests.helpers.synthetic import make_sets


def _customer(days_since_last: int, orders_90d: float, review: float, tickets: float, text: str) -> dict:
    return {
        "customer_id": 1,
        "cutoff_date": dt.date(2025, 6, 1),
        "days_since_last_order": float(days_since_last),
        "orders_90d": orders_90d,
        "spend_365d": 400.0,
        "avg_review_score": review,
        "support_tickets_90d": tickets,
        "text_view": text,
        "tenure_band": "6-24m",
        "acquisition_channel": "search",
        "churned": 0,
    }


@pytest.mark.slow
@pytest.mark.training
def test_recent_happy_customer_is_lower_risk_than_fading_angry_one(config, packaged_encoder_path, tmp_path):
    cfg = config.with_overrides(
        {
            "model": {"encoder": packaged_encoder_path, "fine_tune": "frozen", "max_length": 64, "head_hidden": [32]},
            "training": {
                "epochs": 6,
                "batch_size": 32,
                "eval_batch_size": 64,
                "head_lr": 3e-3,
                "num_threads": 1,
                "early_stopping_patience": 6,
                "calibration": "platt",
            },
        }
    )
    sets = make_sets(n_train=300, n_val=120, n_test=10, seed=21, max_orders=3)
    result = fit_candidates(cfg, sets, tmp_path / "fit")
    predictor = result.transformer.predictor

    engaged = _customer(
        4,
        4.0,
        4.8,
        0.0,
        '[4d ago] order 31.50 completed: books, kitchen | [9d ago] review 5/5 "love it, fast delivery" | '
        "[23d ago] order 45.00 completed: sports",
    )
    fading = _customer(
        150,
        0.0,
        1.2,
        2.0,
        "[150d ago] order 12.00 returned: electronics | [151d ago] support contact x2 | "
        '[152d ago] review 1/5 "terrible, arrived broken and nobody answers"',
    )
    frame = pd.DataFrame([engaged, fading])
    raw = predictor.predict_raw(frame)
    assert raw[0] < raw[1]
    p = predictor.predict_proba(frame)
    assert p[0] < p[1] and np.all((p >= 0) & (p <= 1))
    # the text alone moves risk the right way too (numerics identical)
    text_only = pd.DataFrame([engaged, {**engaged, "text_view": fading["text_view"]}])
    raw_text = predictor.predict_raw(text_only)
    assert raw_text[0] < raw_text[1]
