"""Probability calibration fitted on the validation split, stored as plain JSON numbers.

Why: the transformer is trained with class weighting and the scores feed tier thresholds and
expected-value decisions, so raw scores must be mapped back to real churn probabilities.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)

_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


@dataclass(frozen=True)
class Calibrator:
    """``isotonic`` (piecewise linear through x/y knots), ``platt`` (sigmoid(a * logit(p) + b)) or ``identity``."""

    method: str
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    a: float = 1.0
    b: float = 0.0

    def __call__(self, p) -> np.ndarray:
        s = np.asarray(p, dtype=np.float64)
        if self.method == "isotonic":
            return np.clip(np.interp(s, self.x, self.y), 0.0, 1.0)
        if self.method == "platt":
            return 1.0 / (1.0 + np.exp(-(self.a * _logit(s) + self.b)))
        return np.clip(s, 0.0, 1.0)

    def to_dict(self) -> dict:
        if self.method == "isotonic":
            return {"method": "isotonic", "x": list(self.x), "y": list(self.y)}
        if self.method == "platt":
            return {"method": "platt", "a": self.a, "b": self.b}
        return {"method": "identity"}

    @classmethod
    def from_dict(cls, data: dict) -> Calibrator:
        method = data.get("method")
        if method == "isotonic":
            x, y = [float(v) for v in data["x"]], [float(v) for v in data["y"]]
            if len(x) != len(y) or not x or np.any(np.diff(x) < 0) or np.any(np.diff(y) < 0):
                raise ValueError("isotonic calibrator needs equally long, non-decreasing x/y arrays")
            return cls("isotonic", x=x, y=y)
        if method == "platt":
            return cls("platt", a=float(data["a"]), b=float(data["b"]))
        if method == "identity":
            return cls("identity")
        raise ValueError(f"unknown calibrator method {method!r}")


def fit_calibrator(y_true, raw, method: str = "centered_isotonic") -> Calibrator:
    """Fit on validation labels and raw scores; identity when validation lacks a class."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    s = np.asarray(raw, dtype=np.float64).ravel()
    if y.size == 0 or y.min() == y.max():
        logger.warning("calibration skipped: validation split holds a single class (n=%d)", y.size)
        return Calibrator("identity")
    if method == "centered_isotonic":
        x, y_knots = centered_isotonic_knots(s, y)
        return Calibrator("isotonic", x=x.tolist(), y=y_knots.tolist())
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True).fit(s, y)
        return Calibrator("isotonic", x=iso.X_thresholds_.tolist(), y=iso.y_thresholds_.tolist())
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(s).reshape(-1, 1), y.astype(int))
        a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        if a <= 0:
            logger.warning("platt slope %.4f <= 0 (scores uninformative on validation); using identity", a)
            return Calibrator("identity")
        return Calibrator("platt", a=a, b=b)
    raise ValueError(f"unknown calibration method {method!r}")


def centered_isotonic_knots(raw: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots of centered isotonic regression (Oron & Flournoy, 2017): one per isotonic step, at its centre.

    Why: classic isotonic regression is a staircase whose knots sit at both ends of each step, so two
    adjacent knots can be 1e-4 apart in score and 0.1 apart in probability. A score that moves by that
    little (bf16 arithmetic, another CPU, a GPU) then moves the probability by the whole step. Putting
    one knot at the score-centre of each step keeps the fit monotone and the step levels, but makes the
    curve continuous with a slope bounded by the spacing of step centres. The ends stay flat (the lowest
    and highest steps' levels extend to the lowest and highest validation scores and beyond).
    """
    from sklearn.isotonic import IsotonicRegression

    xs, counts = np.unique(raw, return_counts=True)
    sums = np.bincount(np.searchsorted(xs, raw), weights=y, minlength=len(xs))
    level = (
        IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True)
        .fit(xs, sums / counts, sample_weight=counts)
        .predict(xs)
    )
    starts = np.r_[0, np.flatnonzero(np.diff(level) > 0) + 1]
    weight = np.add.reduceat(counts, starts).astype(np.float64)
    centres = np.add.reduceat(xs * counts, starts) / weight
    levels = level[starts]
    knots_x = np.r_[xs[0], centres, xs[-1]]
    knots_y = np.r_[levels[0], levels, levels[-1]]
    keep = np.r_[True, np.diff(knots_x) > 0]  # a one-value end step puts its centre on the end
    return knots_x[keep], knots_y[keep]
