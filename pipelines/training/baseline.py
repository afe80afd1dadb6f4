"""LightGBM baseline on the numeric features only.

Why: the transformer has to earn its cost; a well-tuned gradient-boosted model on the same split is
the bar it must clear. Deterministic (fixed seeds, ``deterministic=True``, row-wise histograms).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from pipelines.config import Config
from pipelines.contract import LABEL_COLUMN
from pipelines.models.network import numeric_matrix

logger = logging.getLogger(__name__)

EARLY_STOPPING_ROUNDS = 30


@dataclass
class BaselineRun:
    booster: lgb.Booster
    history: list[dict] = field(default_factory=list)
    best_iteration: int = 0
    val_raw: np.ndarray | None = None
    seconds: float = 0.0


def baseline_params(config: Config) -> dict:
    t = config.training
    return {
        "objective": "binary",
        "metric": ["binary_logloss", "average_precision"],
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_data_in_leaf": 20,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.9,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "seed": t.seed,
        "bagging_seed": t.seed,
        "feature_fraction_seed": t.seed,
        "data_random_seed": t.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": t.num_threads or 2,
        "verbose": -1,
    }


def train_baseline(
    config: Config, train: pd.DataFrame, validation: pd.DataFrame, feature_names: list[str]
) -> BaselineRun:
    """Boost up to ``training.baseline_rounds`` rounds, early stopped on validation average precision."""
    started = time.perf_counter()
    params = baseline_params(config)
    x_train, y_train = numeric_matrix(train, feature_names), train[LABEL_COLUMN].to_numpy(dtype=np.int64)
    x_val, y_val = numeric_matrix(validation, feature_names), validation[LABEL_COLUMN].to_numpy(dtype=np.int64)
    dtrain = lgb.Dataset(x_train, y_train, feature_name=list(feature_names), free_raw_data=False)
    dval = lgb.Dataset(x_val, y_val, reference=dtrain, free_raw_data=False)
    evals: dict = {}
    callbacks = [lgb.record_evaluation(evals)]
    if 0 < y_val.sum() < len(y_val):
        callbacks.append(lgb.early_stopping(EARLY_STOPPING_ROUNDS, first_metric_only=False, verbose=False))
    booster = lgb.train(
        {**params, "metric": params["metric"]},
        dtrain,
        num_boost_round=config.training.baseline_rounds,
        valid_sets=[dtrain, dval],
        valid_names=["train", "validation"],
        callbacks=callbacks,
    )
    best = booster.best_iteration or booster.current_iteration()
    history = []
    tr, va = evals.get("train", {}), evals.get("validation", {})
    for i in range(len(tr.get("binary_logloss", []))):
        history.append(
            {
                "epoch": i + 1,
                "train_loss": float(tr["binary_logloss"][i]),
                "val_loss": float(va["binary_logloss"][i]),
                "val_pr_auc": float(va.get("average_precision", [math.nan] * (i + 1))[i]),
                "samples_per_s": math.nan,
            }
        )
    val_raw = booster.predict(x_val, num_iteration=best, num_threads=params["num_threads"])
    seconds = time.perf_counter() - started
    rate = len(x_train) * len(history) / max(seconds, 1e-9)
    for row in history:
        row["samples_per_s"] = rate
    logger.info(
        "baseline: %d rounds (best %d), val PR-AUC %.4f, %.1f s",
        len(history),
        best,
        history[best - 1]["val_pr_auc"] if history else math.nan,
        seconds,
    )
    return BaselineRun(
        booster=booster, history=history, best_iteration=best, val_raw=np.asarray(val_raw), seconds=seconds
    )
