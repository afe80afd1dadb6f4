"""Training of the hybrid candidate: a logistic blend of the LightGBM baseline and the fine-tuned transformer.

Leakage rule (stacking): **no stacker row is scored by a model that saw it.**

- The transformer side: the stacker is fitted on data the encoder never trained on. :func:`split_for_stacking`
  holds out a seeded share of the training *customers* (all their cutoffs) before the transformer is fine-tuned.
  Whole customers, not rows: a customer's rows at neighbouring cutoffs share most of their history and their
  90-day label windows overlap, so a row-level hold-out would let the encoder's memory of a customer leak in.
  Why not cross-fitting the encoder: it would fine-tune once per fold, the most expensive step of the run.
- The LightGBM side is cross-fitted (cheap): the held-out customers are split into ``CROSS_FIT_FOLDS`` folds and
  each fold's rows get the log-odds of a booster trained on every other training row, with the baseline's own
  parameters and number of rounds. At scoring time the baseline trained on every row is used, as in
  scikit-learn's ``StackingClassifier``.

The stacker itself is a two-weight logistic regression (see :mod:`pipelines.models.hybrid` for why).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.config import Config
from pipelines.contract import ID_COLUMN, LABEL_COLUMN
from pipelines.models.hybrid import StackerWeights
from pipelines.models.metrics import pr_auc
from pipelines.models.network import numeric_matrix
from pipelines.training.baseline import baseline_params

logger = logging.getLogger(__name__)

CROSS_FIT_FOLDS = 5


def split_for_stacking(train: pd.DataFrame, share: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows the encoder may train on, rows held out for the stacker): whole customers, ``share`` of them held out."""
    customers = np.sort(train[ID_COLUMN].unique())
    n_held = int(round(len(customers) * share))
    held = set(np.random.default_rng(seed).permutation(customers)[:n_held].tolist())
    is_held = train[ID_COLUMN].isin(held).to_numpy()
    encoder_rows = train[~is_held].reset_index(drop=True)
    stacker_rows = train[is_held].reset_index(drop=True)
    logger.info(
        "hybrid: %d of %d training customers (%d rows) held out of the encoder's training for the stacker",
        n_held,
        len(customers),
        len(stacker_rows),
    )
    return encoder_rows, stacker_rows


@dataclass
class HybridRun:
    weights: StackerWeights
    history: list[dict] = field(default_factory=list)
    val_raw: np.ndarray | None = None
    seconds: float = 0.0
    stacker_rows: int = 0


def cross_fitted_log_odds(
    config: Config, train: pd.DataFrame, stacker_rows: pd.DataFrame, feature_names: list[str], rounds: int
) -> np.ndarray:
    """LightGBM log-odds of every stacker row from a booster that never saw that row's customer."""
    import lightgbm as lgb

    params = baseline_params(config)
    customers = np.sort(stacker_rows[ID_COLUMN].unique())
    fold_of = dict(
        zip(np.random.default_rng(config.training.seed).permutation(customers), range(len(customers)), strict=True)
    )
    folds = stacker_rows[ID_COLUMN].map(lambda c: fold_of[c] % CROSS_FIT_FOLDS).to_numpy()
    train_customers = train[ID_COLUMN].to_numpy()
    out = np.empty(len(stacker_rows), dtype=np.float64)
    for fold in range(min(CROSS_FIT_FOLDS, len(customers))):
        in_fold = folds == fold
        held = stacker_rows.loc[in_fold, ID_COLUMN].unique()
        fit_rows = train[~np.isin(train_customers, held)]
        data = lgb.Dataset(numeric_matrix(fit_rows, feature_names), fit_rows[LABEL_COLUMN].to_numpy(dtype=np.int64))
        booster = lgb.train(params, data, num_boost_round=max(1, int(rounds)))
        out[in_fold] = booster.predict(numeric_matrix(stacker_rows[in_fold], feature_names), raw_score=True)
    return out


def _log_loss(y: np.ndarray, log_odds: np.ndarray) -> float:
    return float(np.mean(np.logaddexp(0.0, log_odds) - y * log_odds))


def train_hybrid(
    config: Config,
    transformer,
    baseline_booster,
    train: pd.DataFrame,
    stacker_rows: pd.DataFrame,
    validation: pd.DataFrame,
    feature_names: list[str],
    val_transformer_logit: np.ndarray | None = None,
) -> HybridRun:
    """Fit the blend weights on the held-out customers; return them with the validation scores.

    ``transformer``: the fine-tuned predictor (it never saw ``stacker_rows``' customers); ``baseline_booster``: the
    LightGBM baseline trained on every row (used on validation and at scoring); ``val_transformer_logit``: the
    transformer's validation logits when the caller has them (saves a pass).
    """
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    if stacker_rows.empty:
        raise ValueError("hybrid: no training customers were held out for the stacker (training.stacker_share)")
    rounds = int(baseline_booster.best_iteration or baseline_booster.current_iteration())
    base_oof = cross_fitted_log_odds(config, train, stacker_rows, feature_names, rounds)
    logger.info("hybrid: transformer logits for %d held-out rows", len(stacker_rows))
    logit = transformer.predict_logits(stacker_rows)
    y = stacker_rows[LABEL_COLUMN].to_numpy(dtype=np.int64)
    x = np.column_stack([base_oof, logit])
    fitted = LogisticRegression(C=1.0, max_iter=1000).fit(x, y)
    weights = StackerWeights(float(fitted.intercept_[0]), float(fitted.coef_[0][0]), float(fitted.coef_[0][1]))
    if val_transformer_logit is None:
        val_transformer_logit = transformer.predict_logits(validation)
    val_base = baseline_booster.predict(numeric_matrix(validation, feature_names), raw_score=True, num_iteration=rounds)
    val_log_odds = weights(val_base, val_transformer_logit)
    y_val = validation[LABEL_COLUMN].to_numpy(dtype=np.int64)
    val_raw = 1.0 / (1.0 + np.exp(-val_log_odds))
    seconds = time.perf_counter() - started
    history = [
        {
            "epoch": 1,
            "train_loss": _log_loss(y, weights(base_oof, logit)),
            "val_loss": _log_loss(y_val, val_log_odds),
            "val_pr_auc": pr_auc(y_val, val_raw) if 0 < y_val.sum() < len(y_val) else math.nan,
            "samples_per_s": len(stacker_rows) / max(seconds, 1e-9),
        }
    ]
    logger.info(
        "hybrid: log-odds = %.3f + %.3f x LightGBM + %.3f x transformer (fitted on %d held-out rows, %.1f s); "
        "val PR-AUC %.4f",
        weights.intercept,
        weights.baseline_weight,
        weights.transformer_weight,
        len(stacker_rows),
        seconds,
        history[0]["val_pr_auc"],
    )
    return HybridRun(weights=weights, history=history, val_raw=val_raw, seconds=seconds, stacker_rows=len(stacker_rows))
