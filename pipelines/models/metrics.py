"""Churn metrics: ranking quality, calibration and what a retention team can act on (lift, capture).

Why in ``models``: training selects candidates and calibrates with them, evaluation and monitoring report
them; one implementation below all three.

Why separate ``choose_threshold``: a decision threshold tuned on the split it is scored on flatters
precision/recall, so the test split must reuse the threshold chosen on validation.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

logger = logging.getLogger(__name__)

EPS = 1e-15
TOP_SHARES = (0.10, 0.20)
ECE_BINS = 10
KEY_METRICS = ("pr_auc", "roc_auc", "brier")  # what the gate, the run summary and the logs compare


def _as_arrays(y_true, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.int64).ravel()
    s = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} values but p has {s.size}")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold only 0/1 labels")
    if np.isnan(s).any():
        raise ValueError("p contains NaN scores")
    return y, s


def _both_classes(y: np.ndarray) -> bool:
    return y.size > 0 and 0 < y.sum() < y.size


def roc_auc(y, p) -> float:
    """ROC-AUC, NaN when only one class is present (undefined, not 0.5)."""
    return float(roc_auc_score(y, p)) if _both_classes(y) else math.nan


def pr_auc(y, p) -> float:
    """PR-AUC as average precision (step-wise, no optimistic interpolation); NaN without positives."""
    return float(average_precision_score(y, p)) if y.size and y.sum() > 0 else math.nan


def brier(y, p) -> float:
    return float(np.mean((p - y) ** 2)) if y.size else math.nan


def log_loss(y, p) -> float:
    if not y.size:
        return math.nan
    q = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def expected_calibration_error(y_true, p, bins: int = ECE_BINS) -> float:
    """Weighted mean |mean score - churn rate| over equal-width score bins."""
    y, s = _as_arrays(y_true, p)
    if not y.size:
        return math.nan
    idx = np.minimum((np.clip(s, 0, 1) * bins).astype(np.int64), bins - 1)
    counts = np.bincount(idx, minlength=bins)
    sum_p = np.bincount(idx, weights=s, minlength=bins)
    sum_y = np.bincount(idx, weights=y, minlength=bins)
    used = counts > 0
    return float(np.sum(np.abs(sum_p[used] - sum_y[used])) / y.size)


def top_share_stats(y_true, p, share: float) -> tuple[float, float]:
    """(lift, capture) of the ``share`` highest-risk customers; ties broken by input order (stable)."""
    y, s = _as_arrays(y_true, p)
    positives = y.sum()
    if not y.size or positives == 0:
        return math.nan, math.nan
    k = max(1, int(round(share * y.size)))
    top = np.argsort(-s, kind="mergesort")[:k]
    hits = y[top].sum()
    return float((hits / k) / (positives / y.size)), float(hits / positives)


def choose_threshold(y_val, p_val) -> float:
    """Threshold maximising F1 on validation scores; reuse it unchanged on test."""
    y, s = _as_arrays(y_val, p_val)
    if not y.size or y.sum() == 0:
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y, s)
    precision, recall = precision[:-1], recall[:-1]
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    return float(thresholds[int(np.argmax(f1))])


def compute_metrics(y_true, p, threshold: float | None = None) -> dict[str, float]:
    """Every headline metric of one split; ``threshold`` None means F1-optimal on this data (validation only)."""
    y, s = _as_arrays(y_true, p)
    if threshold is None:
        threshold = choose_threshold(y, s)
    pred = s >= threshold
    tp = float(np.sum(pred & (y == 1)))
    fp = float(np.sum(pred & (y == 0)))
    fn = float(np.sum(~pred & (y == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    out = {
        "n": float(y.size),
        "churn_rate": float(y.mean()) if y.size else math.nan,
        "roc_auc": roc_auc(y, s),
        "pr_auc": pr_auc(y, s),
        "brier": brier(y, s),
        "log_loss": log_loss(y, s),
        "ece": expected_calibration_error(y, s),
        "threshold": float(threshold),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }
    for share in TOP_SHARES:
        lift, capture = top_share_stats(y, s, share)
        pct = int(round(share * 100))
        out[f"lift_at_{pct}"] = lift
        out[f"capture_at_{pct}"] = capture
    return out
