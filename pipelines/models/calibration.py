"""Probability calibration fitted on the validation split, stored as plain JSON numbers.

Why: the transformer is trained with class weighting and the scores feed tier thresholds and
expected-value decisions, so raw scores must be mapped back to real churn probabilities.

Two guarantees on every fitted calibrator (``floor``/``tie``):

- **No probability is exactly 0 or 1.** A validation sample of ``n`` rows cannot support more certainty
  than about ``1/(n+2)`` (Laplace's rule of succession), so outputs are bounded to
  ``[1/(n+2), 1-1/(n+2)]``; an isotonic end step with no churner (or only churners) among its ``k`` rows
  gets the smoothed level ``(s+1)/(k+2)`` instead of 0 (or 1).
- **No ties introduced by calibration.** Flat ends and bounds would make the top of the list a tie in
  arbitrary order; a tiny strictly increasing term ``tie * (1/2 + atan(raw)/pi)`` (``tie`` = 1e-6)
  orders equal levels by the raw score, so the calibrated ranking is the model's own ranking.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)

_EPS = 1e-6
TIE_WEIGHT = 1e-6  # weight of the raw-score tie-breaker: far below any probability difference that matters


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


@dataclass(frozen=True)
class Calibrator:
    """``isotonic`` (piecewise linear through x/y knots), ``platt`` (sigmoid(a * logit(p) + b)) or ``identity``.

    ``floor`` bounds the output to ``[floor, 1 - floor]``; ``tie`` weighs the strictly increasing raw-score
    term that breaks ties. Both are 0 in bundles saved before they existed (those load unchanged).
    """

    method: str
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    a: float = 1.0
    b: float = 0.0
    floor: float = 0.0
    tie: float = 0.0

    def __call__(self, p) -> np.ndarray:
        s = np.asarray(p, dtype=np.float64)
        if self.method == "isotonic":
            base = np.interp(s, self.x, self.y)
        elif self.method == "platt":
            base = 1.0 / (1.0 + np.exp(-(self.a * _logit(s) + self.b)))
        else:
            base = s
        base = np.clip(base, self.floor, 1.0 - self.floor)
        if self.tie:
            # strictly increasing in s and in (0, 1): the result stays inside (floor, 1 - floor) up to tie
            base = (1.0 - self.tie) * base + self.tie * (0.5 + np.arctan(np.nan_to_num(s)) / np.pi)
        return base

    def to_dict(self) -> dict:
        if self.method == "isotonic":
            out = {"method": "isotonic", "x": list(self.x), "y": list(self.y)}
        elif self.method == "platt":
            out = {"method": "platt", "a": self.a, "b": self.b}
        else:
            out = {"method": "identity"}
        if self.floor:
            out["floor"] = self.floor
        if self.tie:
            out["tie"] = self.tie
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Calibrator:
        method = data.get("method")
        bounds = {"floor": float(data.get("floor", 0.0)), "tie": float(data.get("tie", 0.0))}
        if not (0.0 <= bounds["floor"] < 0.5 and 0.0 <= bounds["tie"] < 0.01):
            raise ValueError(f"calibrator floor must be in [0, 0.5) and tie in [0, 0.01), got {bounds}")
        if method == "isotonic":
            x, y = [float(v) for v in data["x"]], [float(v) for v in data["y"]]
            if len(x) != len(y) or not x or np.any(np.diff(x) < 0) or np.any(np.diff(y) < 0):
                raise ValueError("isotonic calibrator needs equally long, non-decreasing x/y arrays")
            return cls("isotonic", x=x, y=y, **bounds)
        if method == "platt":
            return cls("platt", a=float(data["a"]), b=float(data["b"]), **bounds)
        if method == "identity":
            return cls("identity", **bounds)
        raise ValueError(f"unknown calibrator method {method!r}")


def sample_floor(n: int) -> float:
    """The smallest probability ``n`` validation rows can support: 1/(n+2) (rule of succession)."""
    return 1.0 / (max(int(n), 0) + 2)


def fit_calibrator(y_true, raw, method: str = "centered_isotonic") -> Calibrator:
    """Fit on validation labels and raw scores; identity when validation lacks a class.

    Every result is bounded by :func:`sample_floor` of the validation size and breaks ties by the
    raw score (see the module docstring).
    """
    y = np.asarray(y_true, dtype=np.float64).ravel()
    s = np.asarray(raw, dtype=np.float64).ravel()
    bounds = {"floor": sample_floor(y.size), "tie": TIE_WEIGHT}
    if y.size == 0 or y.min() == y.max():
        logger.warning("calibration skipped: validation split holds a single class (n=%d)", y.size)
        return Calibrator("identity", **bounds)
    if method == "centered_isotonic":
        x, y_knots = centered_isotonic_knots(s, y)
        return Calibrator("isotonic", x=x.tolist(), y=y_knots.tolist(), **bounds)
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True).fit(s, y)
        # one step per distinct fitted level (PAV's adjacent steps have distinct levels)
        steps, owner = np.unique(iso.predict(s), return_inverse=True)
        counts = np.bincount(owner, minlength=len(steps)).astype(np.float64)
        sums = np.bincount(owner, weights=y, minlength=len(steps))
        smoothed = _smooth_certain_steps(steps, counts, y.size, sums=sums)
        knot_step = np.clip(np.searchsorted(steps, iso.y_thresholds_), 0, len(steps) - 1)
        return Calibrator("isotonic", x=iso.X_thresholds_.tolist(), y=smoothed[knot_step].tolist(), **bounds)
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(s).reshape(-1, 1), y.astype(int))
        a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        if a <= 0:
            logger.warning("platt slope %.4f <= 0 (scores uninformative on validation); using identity", a)
            return Calibrator("identity", **bounds)
        return Calibrator("platt", a=a, b=b, **bounds)
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
    levels = _smooth_certain_steps(level[starts], weight, len(raw), sums=np.add.reduceat(sums, starts))
    knots_x = np.r_[xs[0], centres, xs[-1]]
    knots_y = np.r_[levels[0], levels, levels[-1]]
    keep = np.r_[True, np.diff(knots_x) > 0]  # a one-value end step puts its centre on the end
    return knots_x[keep], knots_y[keep]


def _smooth_certain_steps(levels: np.ndarray, counts: np.ndarray, n: int, sums: np.ndarray) -> np.ndarray:
    """Levels of exactly 0 or 1 become (s+1)/(k+2) over their step's k rows, then monotone again.

    Why: a step of k rows without a churner says the rate is small, not that it is 0; Laplace's rule
    gives 1/(k+2). Smoothing can put an end step above its neighbour (a 3-row step at 1/5 next to a
    50-row step at 1/50), so a weighted pool-adjacent-violators pass restores monotonicity.
    """
    levels = np.asarray(levels, dtype=np.float64).copy()
    counts = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    certain = (levels <= 0.0) | (levels >= 1.0)
    if not certain.any():
        return levels
    sums = np.asarray(sums, dtype=np.float64)
    levels[certain] = (sums[certain] + 1.0) / (counts[certain] + 2.0)
    from sklearn.isotonic import IsotonicRegression

    idx = np.arange(len(levels), dtype=np.float64)
    floor = sample_floor(n)
    fitted = IsotonicRegression(increasing=True).fit(idx, levels, sample_weight=counts).predict(idx)
    return np.clip(fitted, floor, 1.0 - floor)
