"""Train both candidates on one split, calibrate on validation, save bundles and pick one.

Why both: the baseline is the honest bar; the platform registers whichever wins on validation
PR-AUC (or the kind fixed by ``training.candidate``) and says so plainly when the transformer loses.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipelines.config import Config
from pipelines.contract import LABEL_COLUMN
from pipelines.datasets import TrainingSets, cap_train_rows
from pipelines.models.bundle import (
    BaselinePredictor,
    ChurnPredictor,
    TransformerPredictor,
    save_baseline_bundle,
    save_transformer_bundle,
)
from pipelines.models.calibration import fit_calibrator
from pipelines.models.metrics import choose_threshold, compute_metrics
from pipelines.training.baseline import train_baseline
from pipelines.training.transformer import train_transformer

logger = logging.getLogger(__name__)

OnEpochEnd = Callable[[str, int, dict], None]


@dataclass
class CandidateResult:
    """One trained candidate: its bundle, calibrated validation metrics and per-epoch history.

    ``history`` rows: epoch, train_loss, val_loss, val_pr_auc, samples_per_s (LightGBM: one row per
    boosting round). ``predictor`` is the in-memory model, so callers need not reload the bundle.
    """

    kind: str
    bundle_dir: Path
    validation_metrics: dict[str, float]
    history: list[dict]
    best_epoch: int
    seconds: float
    threshold: float
    predictor: ChurnPredictor | None = field(default=None, repr=False)


@dataclass
class FitResult:
    """Every trained candidate by kind (``transformer``, ``baseline``, ...), the chosen kind and why."""

    candidates: dict[str, CandidateResult]
    chosen: str
    notes: list[str] = field(default_factory=list)

    @property
    def transformer(self) -> CandidateResult:
        return self.candidates["transformer"]

    @property
    def baseline(self) -> CandidateResult:
        return self.candidates["baseline"]


def _epoch_callback(on_epoch_end: OnEpochEnd | None, kind: str):
    if on_epoch_end is None:
        return None
    return lambda epoch, metrics: on_epoch_end(kind, epoch, metrics)


def _validation_summary(y_val: np.ndarray, raw: np.ndarray, method: str):
    calibrator = fit_calibrator(y_val, raw, method)
    p_val = calibrator(raw)
    threshold = choose_threshold(y_val, p_val)
    return calibrator, threshold, compute_metrics(y_val, p_val, threshold)


def fit_candidates(config: Config, sets: TrainingSets, output_dir, on_epoch_end: OnEpochEnd | None = None) -> FitResult:
    """Train, calibrate and save the transformer and the LightGBM baseline; choose one.

    Under ``torchrun`` every rank trains the transformer; rank 0
    trains the baseline, saves both bundles and its result is broadcast, so all ranks return it.
    """
    started = time.perf_counter()
    out = Path(output_dir)
    feature_names = sets.feature_names
    train = cap_train_rows(sets.train, config.training.max_train_examples, config.training.seed)
    validation = sets.validation
    y_val = validation[LABEL_COLUMN].to_numpy(dtype=np.int64)
    method = config.training.calibration

    run = train_transformer(
        config, train, validation, feature_names, on_epoch_end=_epoch_callback(on_epoch_end, "transformer")
    )
    result = None
    if run.dist.is_main:
        result = _finish_on_main(config, run, train, validation, feature_names, y_val, method, out, on_epoch_end)
        logger.info("fit_candidates done in %.1f s: chosen %s", time.perf_counter() - started, result.chosen)
    if run.dist.enabled:
        import torch.distributed as dist

        # other ranks get the result without the in-memory predictors (they would be pickled over the wire)
        box = [_without_predictors(result) if result is not None else None]
        dist.broadcast_object_list(box, src=0)
        result = result if run.dist.is_main else box[0]
    return result


def _without_predictors(result: FitResult) -> FitResult:
    candidates = {kind: dataclasses.replace(c, predictor=None) for kind, c in result.candidates.items()}
    return dataclasses.replace(result, candidates=candidates)


def _finish_on_main(
    config: Config, run, train, validation, feature_names, y_val, method, out: Path, on_epoch_end
) -> FitResult:
    m = config.model
    calibrator, threshold, metrics = _validation_summary(y_val, run.val_raw, method)
    tr_dir = save_transformer_bundle(
        out / "transformer",
        model=run.model,
        tokenizer=run.tokenizer,
        scaler=run.scaler,
        calibrator=calibrator,
        threshold=threshold,
        max_length=m.max_length,
        encoder_source=m.encoder,
        fine_tune=m.fine_tune,
        extra={
            "validation_metrics": metrics,
            "best_epoch": run.best_epoch,
            "pos_weight": run.pos_weight,
            "history": run.history,
        },
    )
    tr_predictor = TransformerPredictor(
        run.model,
        run.tokenizer,
        run.scaler,
        calibrator,
        max_length=m.max_length,
        threshold=threshold,
        device=run.device,
        batch_size=config.training.eval_batch_size,
        precision=_evaluation_precision(config, run.device),
    )
    transformer = CandidateResult(
        "transformer", tr_dir, metrics, run.history, run.best_epoch, run.seconds, threshold, tr_predictor
    )

    base = train_baseline(config, train, validation, feature_names)
    b_cal, b_threshold, b_metrics = _validation_summary(y_val, base.val_raw, method)
    b_dir = save_baseline_bundle(
        out / "baseline",
        booster=base.booster,
        feature_names=feature_names,
        calibrator=b_cal,
        threshold=b_threshold,
        extra={"validation_metrics": b_metrics, "best_iteration": base.best_iteration},
    )
    b_predictor = BaselinePredictor(
        base.booster, feature_names, b_cal, threshold=b_threshold, num_threads=config.training.num_threads or 2
    )
    baseline = CandidateResult(
        "baseline", b_dir, b_metrics, base.history, base.best_iteration, base.seconds, b_threshold, b_predictor
    )
    if on_epoch_end is not None:
        for row in base.history:
            on_epoch_end("baseline", row["epoch"], dict(row))

    chosen, notes = choose_candidate(config.training.candidate, metrics, b_metrics)
    for note in notes:
        logger.info(note)
    return FitResult(candidates={"transformer": transformer, "baseline": baseline}, chosen=chosen, notes=notes)


def lost_to_baseline_note(t_pr: float, b_pr: float) -> str | None:
    """The note every run carries when the transformer did not beat the LightGBM baseline (None when it did)."""
    if not math.isnan(t_pr) and (math.isnan(b_pr) or t_pr > b_pr):
        return None
    return f"The transformer did not beat the LightGBM baseline on validation PR-AUC ({t_pr:.4f} vs {b_pr:.4f})."


def choose_candidate(setting: str, transformer_metrics: dict, baseline_metrics: dict) -> tuple[str, list[str]]:
    """Better validation PR-AUC wins (ties go to the cheaper baseline) unless the config fixes the kind."""
    t_pr, b_pr = transformer_metrics.get("pr_auc", math.nan), baseline_metrics.get("pr_auc", math.nan)
    lost = lost_to_baseline_note(t_pr, b_pr)
    notes = [lost] if lost else []
    beats = lost is None
    if setting == "best":
        chosen = "transformer" if beats else "baseline"
        notes.append(f"Chose the {chosen} by validation PR-AUC (transformer {t_pr:.4f}, baseline {b_pr:.4f}).")
    else:
        chosen = setting
        notes.append(
            f"training.candidate fixes the candidate to the {chosen} "
            f"(validation PR-AUC: transformer {t_pr:.4f}, baseline {b_pr:.4f})."
        )
    return chosen, notes


def _evaluation_precision(config: Config, device) -> str:
    """Test metrics come from the model as trained: fp32 on CPU, bf16 autocast on GPU when training used it."""
    on_gpu = str(device).startswith("cuda")
    return "bf16" if on_gpu and config.training.bf16_on_gpu else "fp32"
