"""BG/NBD: parameters recovered from simulated customers, expectations match simulated futures."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.features.btyd import BgNbd, bgnbd_columns, fit_bgnbd

TRUE = BgNbd(r=0.8, alpha=40.0, a=0.9, b=3.0)


def _simulate(model: BgNbd, n: int, age: float, future: float, seed: int):
    """Per customer: Poisson purchases at rate lambda, each followed by dropout with probability p."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(model.r, 1 / model.alpha, n)
    p = rng.beta(model.a, model.b, n)
    x, t_x, later = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        t, alive, last = 0.0, True, 0.0
        while alive:
            t += rng.exponential(1 / lam[i])
            if t > age + future:
                break
            if t <= age:
                x[i] += 1
                last = t
            else:
                later[i] += 1
            alive = rng.random() > p[i]
        t_x[i] = last
    return x, t_x, np.full(n, age), later


def test_fit_recovers_simulated_parameters():
    x, t_x, age, _ = _simulate(TRUE, 4000, 365.0, 0.0, seed=1)
    fitted = fit_bgnbd(x, t_x, age)
    assert fitted is not None
    assert fitted.r == pytest.approx(TRUE.r, rel=0.25) and fitted.alpha == pytest.approx(TRUE.alpha, rel=0.3)
    assert fitted.a == pytest.approx(TRUE.a, rel=0.35) and fitted.b == pytest.approx(TRUE.b, rel=0.5)


@pytest.mark.parametrize("model", [TRUE, BgNbd(r=0.8, alpha=40.0, a=2.5, b=6.0)])
def test_expected_purchases_match_simulated_future(model):
    x, t_x, age, later = _simulate(model, 4000, 365.0, 90.0, seed=2)
    cols = bgnbd_columns(model, 90, x, t_x, age)
    expected, alive = cols["bgnbd_expected_purchases"], cols["bgnbd_p_alive"]
    assert np.all((alive > 0) & (alive <= 1)) and np.all(expected >= 0)
    assert expected.mean() == pytest.approx(later.mean(), rel=0.15)
    # ranks customers: those expected to buy more do buy more
    top = expected > np.quantile(expected, 0.8)
    assert later[top].mean() > 3 * later[~top].mean()


def test_unfittable_population_falls_back_to_the_prior():
    assert fit_bgnbd([0, 0, 0], [0, 0, 0], [10, 20, 30]) is None
    cols = bgnbd_columns(None, 90, [0, 1], [0, 5], [10, 20])
    np.testing.assert_array_equal(cols["bgnbd_expected_purchases"], [0, 0])
    np.testing.assert_array_equal(cols["bgnbd_p_alive"], [1, 1])


def _orders(n_customers: int, seed: int):
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for cid in range(1, n_customers + 1):
        day = int(rng.integers(0, 200))
        stop = int(rng.integers(100, 700))
        while day < stop:
            at = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=day, hours=int(rng.integers(0, 24)))
            rows.append((len(rows) + 1, cid, at, "completed", 20.0))
            day += int(rng.integers(5, 80))
    frame = pd.DataFrame(rows, columns=["order_id", "customer_id", "ordered_at", "status", "total_amount"])
    customers = pd.DataFrame(
        {
            "customer_id": range(1, n_customers + 1),
            "signup_at": pd.Timestamp("2023-06-01", tz="UTC"),
            "country": "DE",
            "acquisition_channel": "organic",
        }
    )
    return customers, frame


def test_bgnbd_features_are_point_in_time_and_the_same_when_streamed(config, tmp_path):
    """Scoring slices use the whole population's fit (same values as training); later orders change nothing."""
    import datetime as dt

    import pandas as pd

    from pipelines.features import build_features, iter_scoring_features
    from pipelines.warehouse import connect

    cutoff = dt.date(2025, 1, 1)
    cfg = config.with_overrides({"scoring": {"customers_per_feature_query": 7}})
    customers, orders = _orders(60, seed=3)
    cols = ["customer_id", "bgnbd_expected_purchases", "bgnbd_p_alive"]
    with connect(cfg.warehouse.url, None) as wh:
        wh.init_schema()
        wh.bulk_load("customers", customers)
        wh.bulk_load("orders", orders[orders["ordered_at"] < pd.Timestamp(cutoff, tz="UTC")])
        built = build_features(wh, cfg, [cutoff], labels=False)[cols]
        streamed = pd.concat(list(iter_scoring_features(wh, cfg, cutoff, 5)), ignore_index=True)[cols]
        wh.bulk_load("orders", orders[orders["ordered_at"] >= pd.Timestamp(cutoff, tz="UTC")])
        later = build_features(wh, cfg, [cutoff], labels=False)[cols]
    assert len(built) > 30 and built["bgnbd_p_alive"].nunique() > 10  # fitted, not the fallback
    assert (built["bgnbd_expected_purchases"] > 0).all()
    pd.testing.assert_frame_equal(streamed.sort_values("customer_id").reset_index(drop=True), built)
    pd.testing.assert_frame_equal(later, built)
