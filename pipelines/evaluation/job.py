"""The evaluation job: every candidate of a training run scored on the run's held-out test split.

Why a separate step from training: the test split is touched once, after the choice was made on
validation, with the threshold chosen on validation; the run page then shows all candidates side by side.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pipelines import tracking as t
from pipelines.config import Config
from pipelines.contract import LABEL_COLUMN, SEGMENT_COLUMNS, ExitCode
from pipelines.datasets import load_training_sets
from pipelines.evaluation.metrics import segment_metrics
from pipelines.evaluation.plots import save_plots
from pipelines.models import fit_calibrator, load_bundle
from pipelines.models.metrics import KEY_METRICS, choose_threshold, compute_metrics
from pipelines.training.job import finite_metrics

logger = logging.getLogger(__name__)


class EvaluationError(RuntimeError):
    """The run cannot be evaluated (unknown run, no logged model, no manifest)."""

    exit_code = ExitCode.REGISTRY


def run_bundles(client, run, workdir: Path) -> dict[str, Path]:
    """Local copies of the run's bundles: {chosen kind: logged model bundle, other kinds: candidate artifacts}."""
    tags = run.data.tags
    chosen, model_id = tags.get(t.TAG_KIND), tags.get(t.TAG_MODEL_ID)
    if not chosen or not model_id:
        raise EvaluationError(f"run {run.info.run_id} has no logged model (was it made by train_and_log?)")
    bundles = {chosen: t.download_model_bundle(f"models:/{model_id}", workdir / chosen, client.tracking_uri)}
    for other in filter(None, tags.get(t.TAG_OTHER_KIND, "").split(",")):
        try:
            bundles[other] = t.download_run_artifact(
                client, run.info.run_id, f"{t.CANDIDATES_DIR}/{other}", workdir / other
            )
        except Exception as exc:
            logger.warning("run %s: other candidate %s not available: %s", run.info.run_id, other, exc)
    return bundles


def _share_transformer_logits(predictor, memo: dict[str, dict[int, np.ndarray]]) -> None:
    """One encoder pass per split for the transformer and the hybrid, which holds a byte-identical copy of it.

    Identical ``files`` listings (sha256 of every weight file) mean identical models, so their logits on the same
    frame object are the same numbers; evaluation then costs one encoder pass per split instead of two.
    """
    inner = getattr(predictor, "transformer", predictor if getattr(predictor, "kind", None) == "transformer" else None)
    files = getattr(inner, "metadata", {}).get("files") if inner is not None else None
    if not files:
        return
    cache = memo.setdefault(json.dumps(files, sort_keys=True), {})
    compute = inner.predict_logits

    def predict_logits(frame):
        if id(frame) not in cache:
            cache[id(frame)] = compute(frame)
        return cache[id(frame)]

    inner.predict_logits = predict_logits


REFERENCE_KIND = "bgnbd"  # the classic buy-till-you-die model, shown beside the candidates, never registered
REFERENCE_FEATURE = "bgnbd_expected_purchases"


def bgnbd_reference_metrics(sets, calibration: str) -> dict[str, dict[str, float]]:
    """Validation and test metrics of ranking by fewer BG/NBD expected purchases (calibrated on validation).

    Why: users of purchase-only shops know the BG/NBD model; the run shows how far the candidates are
    ahead of it (or not) on the same split. Empty when the training sets lack the feature.
    """
    if REFERENCE_FEATURE not in sets.validation.columns:
        return {}
    y_val = sets.validation[LABEL_COLUMN].to_numpy()
    risk_val = -sets.validation[REFERENCE_FEATURE].to_numpy(dtype=float)
    calibrator = fit_calibrator(y_val, risk_val, calibration)
    p_val = calibrator(risk_val)
    threshold = choose_threshold(y_val, p_val)
    p_test = calibrator(-sets.test[REFERENCE_FEATURE].to_numpy(dtype=float))
    return {
        "val": compute_metrics(y_val, p_val, threshold=threshold),
        "test": compute_metrics(sets.test[LABEL_COLUMN].to_numpy(), p_test, threshold=threshold),
    }


def evaluate_run(config: Config, run_id: str) -> dict:
    """Score every candidate of the run on its test split (threshold from validation); log and return metrics.

    Plots: the registered candidate's under ``plots/``, and every candidate's under ``plots/<kind>/``.
    """
    import mlflow

    client = t.setup_tracking(config)
    run = t.get_run(client, run_id)
    manifest_path = run.data.tags.get(t.TAG_MANIFEST)
    if not manifest_path:
        raise EvaluationError(f"run {run_id} has no {t.TAG_MANIFEST!r} tag")
    sets = load_training_sets(str(config.resolve_path(manifest_path, t.TAG_MANIFEST)))
    chosen = run.data.tags[t.TAG_KIND]
    y_test = sets.test[LABEL_COLUMN].to_numpy()

    results: dict[str, dict[str, float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="churn-eval-") as tmp,
        t.use_tracking(config),
        mlflow.start_run(run_id=run_id),
    ):
        workdir = Path(tmp)
        bundles = run_bundles(client, run, workdir)
        chosen_scores = None
        test_scores: dict[str, np.ndarray] = {}
        shared_logits: dict[str, dict[int, np.ndarray]] = {}
        for kind, bundle in bundles.items():
            predictor = load_bundle(str(bundle))
            _share_transformer_logits(predictor, shared_logits)
            # the threshold chosen on validation when the candidate was trained (stored in its bundle): the
            # same number a second validation pass would give, without an encoder pass over that split
            threshold = predictor.threshold
            p_test = predictor.predict_proba(sets.test)
            metrics = compute_metrics(y_test, p_test, threshold=threshold)
            results[kind] = metrics
            test_scores[kind] = p_test
            mlflow.log_metrics({f"{kind}_test_{k}": v for k, v in finite_metrics(metrics).items()})
            if kind == chosen:
                chosen_scores = p_test
            del predictor

        test_metrics = results[chosen]
        mlflow.log_metrics({f"test_{k}": v for k, v in finite_metrics(test_metrics).items()})
        reference = bgnbd_reference_metrics(sets, config.training.calibration)
        for split, values in reference.items():
            mlflow.log_metrics({f"{REFERENCE_KIND}_{split}_{k}": v for k, v in finite_metrics(values).items()})
        mlflow.log_dict(
            {"chosen": chosen, "test": results, "reference": {REFERENCE_KIND: reference.get("test")}},
            "evaluation/test_metrics.json",
        )

        segments_columns = [c for c in SEGMENT_COLUMNS if c in sets.test.columns]
        if segments_columns:
            seg_frame = segment_metrics(sets.test, chosen_scores, segments_columns)
            seg_path = workdir / "segment_metrics.csv"
            seg_frame.to_csv(seg_path, index=False)
            mlflow.log_artifact(str(seg_path), artifact_path="evaluation")
            mlflow.log_text(
                seg_frame.to_json(orient="records", indent=1, default_handler=str), "evaluation/segment_metrics.json"
            )

        plots_dir = workdir / "plots"
        plots_dir.mkdir()
        for plot in save_plots(y_test, chosen_scores, plots_dir, label=chosen) or []:
            mlflow.log_artifact(str(plot), artifact_path="plots")
        for kind, scores in test_scores.items():  # every candidate's plots, side by side in the run's artifacts
            for plot in save_plots(y_test, scores, plots_dir / kind, label=kind) or []:
                mlflow.log_artifact(str(plot), artifact_path=f"plots/{kind}")
        shutil.rmtree(plots_dir, ignore_errors=True)
    logger.info(
        "run %s: test %s", run_id, {k: round(v, 4) for k, v in finite_metrics(test_metrics).items() if k in KEY_METRICS}
    )
    return {k: float(v) for k, v in test_metrics.items()}


def summary_table(config: Config, run_id: str) -> list[dict[str, Any]]:
    """Rows (candidate, split, pr_auc, roc_auc, brier, ...) of a run, for the CLI summary."""
    client = t.setup_tracking(config)
    run = t.get_run(client, run_id)
    metrics = run.data.metrics
    rows = []
    chosen = run.data.tags.get(t.TAG_KIND)
    kinds = [chosen, *filter(None, run.data.tags.get(t.TAG_OTHER_KIND, "").split(","))]
    for kind in kinds:
        for split, prefix in (("validation", f"{kind}_val_"), ("test", f"{kind}_test_")):
            values = {k[len(prefix) :]: v for k, v in metrics.items() if k.startswith(prefix)}
            if values:
                rows.append({"candidate": kind + (" *" if kind == chosen else ""), "split": split, **values})
    return rows
