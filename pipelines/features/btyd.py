"""The BG/NBD buy-till-you-die model (Fader, Hardie & Lee 2005), fitted by maximum likelihood.

Why our own 60 lines and not a library: ``lifetimes`` installs with our pins but has been archived by its
author (no release since 2020; it points users to PyMC-Marketing), ``btyd`` does not resolve with our pins,
and ``pymc-marketing`` installs but brings PyMC, PyTensor (a C compiler at first use), ArviZ and ~20 more
packages for what is a 4-parameter likelihood with a closed form. The likelihood, P(alive) and the
conditional expectation below are the paper's closed forms; the tests check that simulated parameters
are recovered and that the expectation matches simulated future purchases.

Leakage: the model is fitted per cutoff on the population's ``(frequency, recency, age)`` at that cutoff,
which use only orders before it (no labels, nothing after the cutoff), exactly as at scoring time.
Time is in days.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

logger = logging.getLogger(__name__)

EXPECTED_COLUMN = "bgnbd_expected_purchases"
P_ALIVE_COLUMN = "bgnbd_p_alive"
MIN_CUSTOMERS = 20  # below this the four parameters are not identified; the features fall back (logged)
MAX_FIT_CUSTOMERS = 20_000  # a seeded sample this large pins four population parameters; keeps the fit ~seconds


@dataclass(frozen=True)
class BgNbd:
    """Fitted BG/NBD parameters: purchase rate ~ Gamma(r, alpha), dropout probability ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    def p_alive(self, x, t_x, age) -> np.ndarray:
        """P(still active at the cutoff | x repeat purchases, the last at t_x, first purchase age days ago)."""
        x, t_x, age = (np.asarray(v, dtype=np.float64) for v in (x, t_x, age))
        log_odds = (
            np.log(self.a)
            - np.log(np.maximum(self.b + x - 1, 1e-12))
            + (self.r + x) * (np.log(self.alpha + age) - np.log(self.alpha + t_x))
        )
        return np.where(x > 0, special.expit(-log_odds), 1.0)

    def expected_purchases(self, t: float, x, t_x, age) -> np.ndarray:
        """E[purchases in the next t days | x, t_x, age] (closed form needs a > 1, else the bound below)."""
        x, t_x, age = (np.asarray(v, dtype=np.float64) for v in (x, t_x, age))
        alive = self.p_alive(x, t_x, age)
        # if alive and never dropping out: Gamma posterior mean rate times t (an upper bound of the expectation)
        bound = alive * (self.r + x) / (self.alpha + age) * t
        if self.a <= 1.0 + 1e-6:
            return bound
        z = t / (self.alpha + age + t)
        with np.errstate(all="ignore"):
            hyp = special.hyp2f1(self.r + x, self.b + x, self.a + self.b + x - 1, z)
            term = 1.0 - np.exp((self.r + x) * np.log((self.alpha + age) / (self.alpha + age + t))) * hyp
            exact = (self.a + self.b + x - 1) / (self.a - 1) * term * alive
        ok = np.isfinite(exact) & (exact >= 0)
        return np.where(ok, np.minimum(exact, bound), bound)


def _neg_log_likelihood(log_params: np.ndarray, x, t_x, age, weight) -> float:
    r, alpha, a, b = np.exp(log_params)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + age)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x), -np.inf)
    ll = a1 + a2 + np.logaddexp(a3, a4)
    return -float(np.sum(weight * ll) / np.sum(weight))


def fit_bgnbd(frequency, recency, age) -> BgNbd | None:
    """Maximum likelihood over the unique ``(x, t_x, age)`` triples; None when it cannot be fitted (logged).

    Above ``MAX_FIT_CUSTOMERS`` a seeded random sample (same input order, same sample) is fitted.
    """
    x, t_x, age = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, age))
    valid = np.isfinite(x) & np.isfinite(t_x) & np.isfinite(age) & (x >= 0) & (t_x >= 0) & (age >= t_x)
    if valid.sum() < MIN_CUSTOMERS or not (x[valid] > 0).any():
        logger.warning("BG/NBD not fitted: %d usable customers, repeat buyers among them needed", int(valid.sum()))
        return None
    data = np.c_[x[valid], t_x[valid], age[valid]]
    if len(data) > MAX_FIT_CUSTOMERS:
        data = data[np.random.default_rng(0).choice(len(data), MAX_FIT_CUSTOMERS, replace=False)]
    triples, counts = np.unique(data, axis=0, return_counts=True)
    args = (triples[:, 0], triples[:, 1], triples[:, 2], counts.astype(np.float64))
    start = np.log([1.0, max(float(np.mean(age[valid])), 1.0), 1.0, 1.0])
    res = optimize.minimize(_neg_log_likelihood, start, args=args, method="L-BFGS-B", bounds=[(-12.0, 12.0)] * 4)
    if not np.isfinite(res.fun):
        logger.warning("BG/NBD fit did not converge (%s); its features fall back", res.message)
        return None
    model = BgNbd(*(float(v) for v in np.exp(res.x)))
    logger.info("BG/NBD fitted on %d customers: r=%.3g alpha=%.3g a=%.3g b=%.3g", int(valid.sum()), *np.exp(res.x))
    return model


def bgnbd_columns(model: BgNbd | None, horizon_days: int, frequency, recency, age) -> dict[str, np.ndarray]:
    """The two model features; without a model: expected purchases 0 and P(alive) 1 (the BG/NBD prior at x=0)."""
    n = len(np.asarray(frequency))
    if model is None:
        return {EXPECTED_COLUMN: np.zeros(n), P_ALIVE_COLUMN: np.ones(n)}
    return {
        EXPECTED_COLUMN: model.expected_purchases(float(horizon_days), frequency, recency, age),
        P_ALIVE_COLUMN: model.p_alive(frequency, recency, age),
    }
