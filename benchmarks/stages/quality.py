"""Stage quality: every candidate trained on one time split, test PR-AUC / ROC-AUC with a paired bootstrap CI.

The same training sets (``build_training_sets`` at the day after the generated history) feed:

- ``lightgbm``: the LightGBM baseline on all numeric features (the bar every other candidate must clear);
- ``lightgbm_no_btyd``: the same without the purchase-only features (BG/NBD statistics, median gap,
  overdue ratio, BG/NBD expected purchases and P(alive)): what those features add;
- ``orders_only`` / ``orders_only_no_btyd``: LightGBM on the order-derived features only (what a purchase-log
  shop has: no events, no reviews), with and without the purchase-only features;
- ``bgnbd``: the classic buy-till-you-die reference: BG/NBD expected purchases in the horizon (fitted per
  cutoff on pre-cutoff orders), fewer expected purchases = higher churn risk, calibrated on validation;
- ``numeric_mlp``: an MLP on the standardized numeric features (scikit-learn, early stopped): the fused
  network without its text, to tell "the head learns numbers badly" from "the text adds nothing";
- ``transformer``: the fine-tuned encoder + numeric head (``fit_candidates``), and ``hybrid``: LightGBM over the
  numeric features plus that transformer's logit, stacked on customers held out of the fine-tuning; unless
  left out with ``--quality-candidates``; on CPU the transformer's rows are capped by ``--quality-max-train`` (the
  run says so), while the LightGBM rows use every train row (the honest bar);
- ``text_only``: the same fine-tuning with no numeric features (``--quality-candidates ...,text_only``): what the
  encoder reads from the text alone;
- learning curve (``--quality-train-rows 500,1000,2000``): transformer and hybrid refitted at each row cap.

The chosen candidate is the best on validation PR-AUC (as in training); the headline is the paired bootstrap
95% CI of test PR-AUC (chosen - lightgbm) on the same resampled customers.
"""

from __future__ import annotations

import logging
import tempfile
import time

import numpy as np

from benchmarks.common import Context, StageResult, require
from benchmarks.stages.data import ensure_data, score_date

logger = logging.getLogger("benchmarks.quality")

PURCHASE_ONLY_FEATURES = (
    "btyd_frequency",
    "btyd_recency_days",
    "btyd_age_days",
    "median_gap_days",
    "overdue_ratio",
    "bgnbd_expected_purchases",
    "bgnbd_p_alive",
)
# what a purchase-log-only shop has: no site events, no reviews (order-derived features only)
NON_ORDER_PREFIXES = (
    "days_since_last_event",
    "sessions_",
    "searches_",
    "add_to_cart_",
    "cart_abandonment_",
    "support_",
)
NON_ORDER_PREFIXES += ("reviews_", "mean_rating_", "low_rating_share_", "sentiment_")
CPU_MAX_TRAIN = 2000  # transformer train rows on CPU by default: ~3 min per epoch on 2 busy cores


def _lightgbm(config, sets, names: list[str]):
    train_baseline = require("pipelines.training.baseline", "train_baseline")
    from pipelines.models import fit_calibrator
    from pipelines.models.bundle import BaselinePredictor

    started = time.perf_counter()
    run = train_baseline(config, sets.train, sets.validation, names)
    calibrator = fit_calibrator(sets.validation["churned"].to_numpy(), run.val_raw, config.training.calibration)
    predictor = BaselinePredictor(run.booster, names, calibrator, num_threads=config.training.num_threads or 2)
    return predictor, time.perf_counter() - started


def _numeric_mlp(config, sets, names: list[str]):
    """An MLP on the standardized numeric features (missing values at the mean), early stopped on a 10% split."""
    from sklearn.neural_network import MLPClassifier

    from pipelines.models import fit_calibrator
    from pipelines.models.network import NumericScaler

    started = time.perf_counter()
    scaler = NumericScaler.fit(sets.train, names)
    mlp = MLPClassifier(
        hidden_layer_sizes=tuple(config.model.head_hidden), early_stopping=True, max_iter=300, random_state=0
    )
    mlp.fit(scaler.transform(sets.train), sets.train["churned"].to_numpy())
    calibrator = fit_calibrator(
        sets.validation["churned"].to_numpy(),
        mlp.predict_proba(scaler.transform(sets.validation))[:, 1],
        config.training.calibration,
    )
    return _Scored(lambda frame: calibrator(mlp.predict_proba(scaler.transform(frame))[:, 1])), (
        time.perf_counter() - started
    )


class _Scored:
    """A predict_proba wrapper for the ablation's non-platform models."""

    def __init__(self, predict):
        self.predict_proba = predict


def _text_only(config, sets):
    """The encoder fine-tuned on the text view alone (no numeric features), on the transformer's row budget."""
    from pipelines.datasets import cap_train_rows
    from pipelines.models import fit_calibrator
    from pipelines.models.bundle import TransformerPredictor
    from pipelines.training.transformer import train_transformer

    t = config.training
    train = cap_train_rows(sets.train, t.max_train_examples, t.seed)
    run = train_transformer(config, train, sets.validation, [])
    calibrator = fit_calibrator(sets.validation["churned"].to_numpy(), run.val_raw, t.calibration)
    return TransformerPredictor(
        run.model, run.tokenizer, run.scaler, calibrator, max_length=config.model.max_length, device=run.device
    )


def _learning_curve(ctx, config, sets, caps, fit_candidates) -> list[dict]:
    """Validation and test PR-AUC of the transformer and the hybrid at each transformer row cap."""
    from pipelines.evaluation.metrics import pr_auc

    rows = []
    for cap in caps:
        capped = ctx.config(training={"max_train_examples": int(cap), "epochs": config.training.epochs})
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=ctx.work_dir) as out:
            fit = fit_candidates(capped, sets, out)
            row = {"max_train_examples": int(cap), "seconds": time.perf_counter() - started}
            for kind, cand in fit.candidates.items():
                row[f"{kind}_validation_pr_auc"] = cand.validation_metrics.get("pr_auc")
                row[f"{kind}_test_pr_auc"] = pr_auc(
                    sets.test["churned"].to_numpy(), np.asarray(cand.predictor.predict_proba(sets.test))
                )
        logger.info("learning curve at %d rows: %s", cap, {k: round(v, 4) for k, v in row.items()})
        rows.append(row)
    return rows


def sample_evaluation(sets, rows: int, seed: int):
    """The training sets with validation and test cut to a seeded sample of ``rows`` customers each (all their rows)."""
    import dataclasses

    from pipelines.contract import ID_COLUMN

    def sample(frame):
        customers = np.sort(frame[ID_COLUMN].unique())
        if len(customers) <= rows:
            return frame
        kept = np.random.default_rng(seed).choice(customers, size=rows, replace=False)
        return frame[frame[ID_COLUMN].isin(kept)].reset_index(drop=True)

    return dataclasses.replace(sets, validation=sample(sets.validation), test=sample(sets.test))


def run(ctx: Context) -> StageResult:
    build_training_sets, load_training_sets = require("pipelines.datasets", "build_training_sets", "load_training_sets")
    from pipelines.evaluation.metrics import bootstrap_metric_difference, pr_auc, roc_auc

    ensure_data(ctx)
    candidates = set(ctx.shared.get("quality_candidates", ("lightgbm", "transformer")))
    cuda = False
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    max_train = ctx.shared.get("quality_max_train") or (None if cuda else CPU_MAX_TRAIN)
    config = ctx.config()  # training sets and LightGBM: every train row
    epochs = ctx.shared.get("quality_epochs") or config.training.epochs
    # the transformer's budget: its rows (and epochs); LightGBM keeps every train row
    capped = ctx.config(training={"max_train_examples": max_train, "epochs": epochs})
    as_of = score_date(config)
    result = StageResult("quality", repeat=1)
    started = time.perf_counter()
    sets = load_training_sets(build_training_sets(config, as_of))
    dataset_seconds = time.perf_counter() - started
    eval_rows = ctx.shared.get("quality_eval_rows")
    if eval_rows:
        sets = sample_evaluation(sets, eval_rows, seed=0)
        result.notes.append(
            f"validation and test: a seeded sample of {eval_rows:,} customers each (--quality-eval-rows), the same "
            "for every candidate; training uses every train row (the transformer its cap)"
        )
    names = list(sets.feature_names)
    y_val = sets.validation["churned"].to_numpy()
    y_test = sets.test["churned"].to_numpy()
    result.info.update(
        {
            "customers": ctx.customers,
            "as_of": as_of.isoformat(),
            "rows": {s: len(sets.split(s)) for s in ("train", "validation", "test")},
            "churn_rate_test": float(y_test.mean()),
            "device": "cuda" if cuda else "cpu",
        }
    )
    result.add("dataset_seconds", dataset_seconds, "s", "build_training_sets (features, BG/NBD fits, Parquet)")

    predictors: dict[str, object] = {}
    seconds: dict[str, float] = {}
    predictors["lightgbm"], seconds["lightgbm"] = _lightgbm(config, sets, names)
    reduced = [n for n in names if n not in PURCHASE_ONLY_FEATURES]
    predictors["lightgbm_no_btyd"], seconds["lightgbm_no_btyd"] = _lightgbm(config, sets, reduced)
    orders_only = [n for n in names if not n.startswith(NON_ORDER_PREFIXES)]
    predictors["orders_only"], seconds["orders_only"] = _lightgbm(config, sets, orders_only)
    orders_no_btyd = [n for n in orders_only if n not in PURCHASE_ONLY_FEATURES]
    predictors["orders_only_no_btyd"], seconds["orders_only_no_btyd"] = _lightgbm(config, sets, orders_no_btyd)
    predictors["numeric_mlp"], seconds["numeric_mlp"] = _numeric_mlp(config, sets, names)
    fit_candidates = require("pipelines.training.fit", "fit_candidates")
    if "transformer" in candidates:
        result.info.update({"transformer_max_train_examples": max_train, "epochs": capped.training.epochs})
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=ctx.work_dir) as out:
            fit = fit_candidates(capped, sets, out)
            for kind in ("transformer", "hybrid"):
                if kind in fit.candidates:
                    predictors[kind] = fit.candidates[kind].predictor
                    seconds[kind] = fit.candidates[kind].seconds
        seconds["transformer"] = time.perf_counter() - t0 - seconds.get("hybrid", 0.0)
    if "text_only" in candidates:
        t0 = time.perf_counter()
        predictors["text_only"] = _text_only(capped, sets)
        seconds["text_only"] = time.perf_counter() - t0
    curve = ctx.shared.get("quality_train_rows") or ()
    if curve:
        result.info["learning_curve"] = _learning_curve(ctx, capped, sets, curve, fit_candidates)

    val_p = {name: np.asarray(p.predict_proba(sets.validation)) for name, p in predictors.items()}
    test_p = {name: np.asarray(p.predict_proba(sets.test)) for name, p in predictors.items()}
    if "bgnbd_expected_purchases" in names:
        from pipelines.models import fit_calibrator

        risk = {s: -sets.split(s)["bgnbd_expected_purchases"].to_numpy() for s in ("validation", "test")}
        calibrator = fit_calibrator(y_val, risk["validation"], config.training.calibration)
        val_p["bgnbd"], test_p["bgnbd"] = calibrator(risk["validation"]), calibrator(risk["test"])
        predictors["bgnbd"], seconds["bgnbd"] = None, 0.0
    table = {}
    for name in predictors:
        row = {
            "validation_pr_auc": pr_auc(y_val, val_p[name]),
            "test_pr_auc": pr_auc(y_test, test_p[name]),
            "test_roc_auc": roc_auc(y_test, test_p[name]),
            "seconds": seconds[name],
        }
        table[name] = row
        result.add(f"{name}_test_pr_auc", row["test_pr_auc"], "", f"test PR-AUC of {name}")
        result.add(f"{name}_test_roc_auc", row["test_roc_auc"], "", f"test ROC-AUC of {name}")
    selectable = [n for n in predictors if n in ("lightgbm", "bgnbd", "transformer", "hybrid")]
    best = max(selectable, key=lambda n: (table[n]["validation_pr_auc"], n == "lightgbm"))
    rounds = 1000
    diff = bootstrap_metric_difference(y_test, test_p[best], test_p["lightgbm"], "pr_auc", rounds=rounds, seed=0)
    btyd = bootstrap_metric_difference(
        y_test, test_p["lightgbm"], test_p["lightgbm_no_btyd"], "pr_auc", rounds=rounds, seed=0
    )
    result.add("best_minus_lightgbm_test_pr_auc", diff["observed"], "", f"{best} - lightgbm, test PR-AUC")
    orders_gain = bootstrap_metric_difference(
        y_test, test_p["orders_only"], test_p["orders_only_no_btyd"], "pr_auc", rounds=rounds, seed=0
    )
    result.add(
        "btyd_gain_orders_only_test_pr_auc",
        orders_gain["observed"],
        "",
        "orders_only - orders_only_no_btyd, test PR-AUC (a purchase-log-only shop)",
    )
    result.notes.append(
        f"purchase-log-only shop (order features only): BG/NBD features add {orders_gain['observed']:+.4f} test PR-AUC "
        f"(95% CI {orders_gain['ci_low']:+.4f} .. {orders_gain['ci_high']:+.4f})"
    )
    result.info["btyd_gain_orders_only_ci95"] = [orders_gain["ci_low"], orders_gain["ci_high"]]
    result.add("btyd_features_gain_test_pr_auc", btyd["observed"], "", "lightgbm - lightgbm_no_btyd, test PR-AUC")
    result.info.update(
        {
            "candidates": table,
            "chosen_by_validation_pr_auc": best,
            "best_minus_lightgbm_ci95": [diff["ci_low"], diff["ci_high"]],
            "btyd_gain_ci95": [btyd["ci_low"], btyd["ci_high"]],
            "bootstrap_rounds": rounds,
        }
    )
    result.notes.append(
        f"chosen by validation PR-AUC: {best}; test PR-AUC {best} - lightgbm = {diff['observed']:+.4f} "
        f"(paired bootstrap 95% CI {diff['ci_low']:+.4f} .. {diff['ci_high']:+.4f}, {rounds} rounds)"
    )
    result.notes.append(
        f"purchase-only features (BG/NBD etc.): lightgbm - lightgbm_no_btyd = {btyd['observed']:+.4f} "
        f"(95% CI {btyd['ci_low']:+.4f} .. {btyd['ci_high']:+.4f})"
    )
    if "transformer" in predictors and not cuda:
        result.notes.append(
            f"transformer on CPU trained on {max_train} rows x {epochs} epochs (of "
            f"{len(sets.train)} train rows): a CPU-budget figure, not the encoder's ceiling"
        )
    for name, row in table.items():
        logger.info(
            "  %-18s val PR-AUC %.4f  test PR-AUC %.4f  test ROC-AUC %.4f  (%.0f s)",
            name,
            row["validation_pr_auc"],
            row["test_pr_auc"],
            row["test_roc_auc"],
            row["seconds"],
        )
    return result
