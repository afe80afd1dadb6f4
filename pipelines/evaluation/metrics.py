"""Evaluation beyond the headline metrics: per-segment quality and paired bootstrap comparisons.

The headline metrics themselves (PR-AUC, ECE, lift ...) live in ``pipelines.models.metrics`` because
training uses them too.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from pipelines.models.metrics import _as_arrays, _both_classes, brier, log_loss, pr_auc, roc_auc

logger = logging.getLogger(__name__)


def segment_metrics(
    frame: pd.DataFrame, p, segment_columns: Sequence[str], label_column: str = "churned"
) -> pd.DataFrame:
    """One row per (segment column, value): n, churn rate, mean score, ROC-AUC and PR-AUC where defined.

    Why: a model can look fine overall and be useless for, say, new customers from one channel.
    """
    scores = np.asarray(p, dtype=np.float64).ravel()
    if len(frame) != scores.size:
        raise ValueError(f"frame has {len(frame)} rows but p has {scores.size}")
    labels = frame[label_column].to_numpy(dtype=np.int64)
    rows = []
    for column in segment_columns:
        values = frame[column].astype("object").where(frame[column].notna(), "<missing>").to_numpy()
        for value in sorted(set(values), key=str):
            mask = values == value
            y, s = labels[mask], scores[mask]
            rows.append(
                {
                    "segment": column,
                    "value": value,
                    "n": int(mask.sum()),
                    "churn_rate": float(y.mean()),
                    "mean_score": float(s.mean()),
                    "roc_auc": roc_auc(y, s),
                    "pr_auc": pr_auc(y, s),
                }
            )
    return pd.DataFrame(rows, columns=["segment", "value", "n", "churn_rate", "mean_score", "roc_auc", "pr_auc"])


_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "pr_auc": pr_auc,
    "roc_auc": roc_auc,
    "brier": brier,
    "log_loss": log_loss,
}


def bootstrap_metric_difference(
    y, p_a, p_b, metric: str = "pr_auc", rounds: int = 500, seed: int = 0, alpha: float = 0.05
) -> dict[str, float]:
    """Paired bootstrap of metric(a) - metric(b) on the same resampled customers.

    Pairing removes the shared sampling noise, so the interval is about the models, not the sample.
    Resamples lacking a class (metric undefined) are skipped. For brier/log_loss lower is better,
    so a negative difference favours ``a``.
    """
    if metric not in _METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {sorted(_METRICS)}")
    fn = _METRICS[metric]
    y_arr, a = _as_arrays(y, p_a)
    _, b = _as_arrays(y, p_b)
    if a.shape != b.shape:
        raise ValueError("p_a and p_b must have the same length")
    rng = np.random.default_rng(seed)
    diffs = []
    n = y_arr.size
    for _ in range(rounds):
        idx = rng.integers(0, n, n)
        yy = y_arr[idx]
        if not _both_classes(yy):
            continue
        diffs.append(fn(yy, a[idx]) - fn(yy, b[idx]))
    observed = fn(y_arr, a) - fn(y_arr, b)
    if not diffs:
        logger.warning("bootstrap: no resample held both classes; interval undefined")
        return {
            "observed": observed,
            "mean": math.nan,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "prob_a_better": math.nan,
            "rounds": 0.0,
        }
    d = np.asarray(diffs)
    better = d < 0 if metric in ("brier", "log_loss") else d > 0
    return {
        "observed": float(observed),
        "mean": float(d.mean()),
        "ci_low": float(np.quantile(d, alpha / 2)),
        "ci_high": float(np.quantile(d, 1 - alpha / 2)),
        "prob_a_better": float(better.mean()),
        "rounds": float(d.size),
    }
