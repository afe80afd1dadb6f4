"""Train every candidate on one split, calibrate on validation, save bundles and pick one.

Candidates: the fine-tuned ``transformer`` (encoder fused with the behaviour features), the LightGBM
``baseline`` (the honest bar) and the ``hybrid`` (LightGBM over the features plus the transformer's logit).
The platform registers whichever wins on validation PR-AUC (or the kind fixed by ``training.candidate``)
and says plainly which won, by how much, and when no candidate with the encoder beat the baseline.
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
from pipelines.models.hybrid import HybridPredictor, save_hybrid_bundle
from pipelines.models.metrics import choose_threshold, compute_metrics
from pipelines.training.baseline import train_baseline
from pipelines.training.hybrid import split_for_stacking, train_hybrid
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
    """Train, calibrate and save the transformer, the LightGBM baseline and (``training.hybrid``) the hybrid.

    Rows: the baseline boosts on every training row; with the hybrid on, a share of the customers is held out
    of the transformer's fine-tuning for the hybrid's stacker (:mod:`pipelines.training.hybrid`); the
    transformer's rows are then capped by ``training.max_train_examples``. Under ``torchrun`` every rank
    trains the transformer; rank 0 trains the rest, saves the bundles and its result is broadcast.
    """
    started = time.perf_counter()
    out = Path(output_dir)
    feature_names = sets.feature_names
    t = config.training
    encoder_pool, stacker_rows = (
        split_for_stacking(sets.train, t.stacker_share, t.seed) if t.hybrid else (sets.train, sets.train.iloc[:0])
    )
    encoder_train = cap_train_rows(encoder_pool, t.max_train_examples, t.seed)
    stacker_rows = cap_train_rows(stacker_rows, t.max_stacker_rows, t.seed, setting="training.max_stacker_rows")
    validation = sets.validation
    y_val = validation[LABEL_COLUMN].to_numpy(dtype=np.int64)

    run = train_transformer(
        config, encoder_train, validation, feature_names, on_epoch_end=_epoch_callback(on_epoch_end, "transformer")
    )
    result = None
    if run.dist.is_main:
        result = _finish_on_main(
            config, run, sets.train, stacker_rows, validation, feature_names, y_val, out, on_epoch_end
        )
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
    config: Config, run, train, stacker_rows, validation, feature_names, y_val, out: Path, on_epoch_end
) -> FitResult:
    m = config.model
    method = config.training.calibration
    threads = config.training.num_threads or 2
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
        text_style=config.dataset.text_style,
        extra={
            "validation_metrics": metrics,
            "best_epoch": run.best_epoch,
            "pos_weight": run.pos_weight,
            "history": run.history,
            "train_rows": run.train_rows,
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
    candidates = {
        "transformer": CandidateResult(
            "transformer", tr_dir, metrics, run.history, run.best_epoch, run.seconds, threshold, tr_predictor
        )
    }

    base = train_baseline(config, train, validation, feature_names)
    b_cal, b_threshold, b_metrics = _validation_summary(y_val, base.val_raw, method)
    b_dir = save_baseline_bundle(
        out / "baseline",
        booster=base.booster,
        feature_names=feature_names,
        calibrator=b_cal,
        threshold=b_threshold,
        extra={"validation_metrics": b_metrics, "best_iteration": base.best_iteration, "train_rows": len(train)},
    )
    b_predictor = BaselinePredictor(base.booster, feature_names, b_cal, threshold=b_threshold, num_threads=threads)
    candidates["baseline"] = CandidateResult(
        "baseline", b_dir, b_metrics, base.history, base.best_iteration, base.seconds, b_threshold, b_predictor
    )
    _report_rounds(on_epoch_end, "baseline", base.history)

    if config.training.hybrid:
        val_logit = _logit(run.val_raw) if run.val_raw is not None else None
        hyb = train_hybrid(
            config, tr_predictor, base.booster, train, stacker_rows, validation, feature_names, val_logit
        )
        h_cal, h_threshold, h_metrics = _validation_summary(y_val, hyb.val_raw, method)
        h_dir = save_hybrid_bundle(
            out / "hybrid",
            transformer_dir=tr_dir,
            booster=base.booster,
            feature_names=feature_names,
            weights=hyb.weights,
            calibrator=h_cal,
            threshold=h_threshold,
            extra={
                "validation_metrics": h_metrics,
                "stacker_rows": hyb.stacker_rows,
                "stacking": "blend weights fitted on customers held out of the encoder's fine-tuning "
                "(training.stacker_share), LightGBM side cross-fitted",
            },
        )
        h_predictor = HybridPredictor(
            tr_predictor, base.booster, feature_names, hyb.weights, h_cal, threshold=h_threshold, num_threads=threads
        )
        candidates["hybrid"] = CandidateResult(
            "hybrid", h_dir, h_metrics, hyb.history, 1, hyb.seconds, h_threshold, h_predictor
        )
        _report_rounds(on_epoch_end, "hybrid", hyb.history)

    chosen, notes = choose_candidate(
        config.training.candidate, {kind: c.validation_metrics for kind, c in candidates.items()}
    )
    for note in notes:
        logger.info(note)
    return FitResult(candidates=candidates, chosen=chosen, notes=notes)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def _report_rounds(on_epoch_end: OnEpochEnd | None, kind: str, history: list[dict]) -> None:
    if on_epoch_end is not None:
        for row in history:
            on_epoch_end(kind, row["epoch"], dict(row))


ENCODER_KINDS = ("transformer", "hybrid")  # the candidates that contain the fine-tuned encoder
# ties go to the cheaper candidate: the baseline first, then the hybrid (one encoder pass + trees)
COST_ORDER = ("baseline", "hybrid", "transformer")


def lost_to_baseline_note(pr_aucs: dict[str, float]) -> str | None:
    """The note a run carries when no candidate with the encoder beat the LightGBM baseline (None when one did)."""
    b_pr = pr_aucs.get("baseline", math.nan)
    encoder = {k: v for k, v in pr_aucs.items() if k in ENCODER_KINDS}
    if not encoder or any(not math.isnan(v) and (math.isnan(b_pr) or v > b_pr) for v in encoder.values()):
        return None
    names = " and the ".join(encoder)
    values = ", ".join(f"{k} {v:.4f}" for k, v in encoder.items())
    return f"The {names} did not beat the LightGBM baseline on validation PR-AUC ({values} vs baseline {b_pr:.4f})."


def choose_candidate(setting: str, validation_metrics: dict[str, dict]) -> tuple[str, list[str]]:
    """Best validation PR-AUC wins (ties go to the cheaper candidate) unless the config fixes the kind."""
    pr = {kind: float(m.get("pr_auc", math.nan)) for kind, m in validation_metrics.items()}
    lost = lost_to_baseline_note(pr)
    notes = [lost] if lost else []
    listing = ", ".join(f"{kind} {value:.4f}" for kind, value in sorted(pr.items(), key=lambda kv: -_or_minus(kv[1])))
    if setting == "best":
        ranked = sorted(pr, key=lambda k: (-_or_minus(pr[k]), COST_ORDER.index(k) if k in COST_ORDER else 99))
        chosen = ranked[0]
        runner_up = ranked[1] if len(ranked) > 1 else None
        margin = (
            f", {pr[chosen] - pr[runner_up]:+.4f} over the {runner_up}"
            if runner_up and math.isfinite(pr[chosen]) and math.isfinite(pr[runner_up])
            else ""
        )
        notes.append(f"Chose the {chosen} by validation PR-AUC{margin} ({listing}).")
    else:
        if setting not in pr:
            raise ValueError(f"training.candidate is {setting!r} but that candidate was not trained ({', '.join(pr)})")
        chosen = setting
        notes.append(f"training.candidate fixes the candidate to the {chosen} (validation PR-AUC: {listing}).")
    return chosen, notes


def _or_minus(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def _evaluation_precision(config: Config, device) -> str:
    """Test metrics come from the model as trained: fp32 on CPU, bf16 autocast on GPU when training used it."""
    on_gpu = str(device).startswith("cuda")
    return "bf16" if on_gpu and config.training.bf16_on_gpu else "fp32"
