"""The hybrid candidate: a stacked blend of the LightGBM baseline and the fine-tuned transformer, in log-odds.

Why: LightGBM is hard to beat on behaviour numbers and cannot read text; the fused network reads the text but
learns the numbers less well from the few rows a CPU can fine-tune on. The hybrid keeps both as they are and
learns, on customers neither was allowed to memorise, how much to trust each:

    log-odds = intercept + baseline_weight * LightGBM log-odds + transformer_weight * transformer logit

A two-weight logistic regression is the stacker because it is fitted on the held-out customers only (a few
thousand rows in a small shop): more capacity there overfits, measured (a LightGBM stacker over the features
plus the logit lost to it on the demo data). Leakage: see :mod:`pipelines.training.hybrid` (the stacker's rows
are scored by a cross-fitted LightGBM and a transformer that never trained on those customers).

Layout::

    bundle.json        kind "hybrid", feature_names, stacker {intercept, baseline_weight, transformer_weight},
                       calibrator, threshold; ``files`` lists every file below, the transformer's too
    model.txt          the LightGBM baseline (text format), over feature_names
    transformer/       a complete transformer bundle (its own bundle.json and checksums)
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.models.bundle import (
    BASELINE_FILE,
    BUNDLE_FILE,
    FORMAT_VERSION,
    BundleError,
    TransformerPredictor,
    _write_atomically,
    _write_json,
    library_versions,
)
from pipelines.models.calibration import Calibrator
from pipelines.models.network import numeric_matrix

logger = logging.getLogger(__name__)

TRANSFORMER_DIR = "transformer"


@dataclass(frozen=True)
class StackerWeights:
    """The blend, in log-odds: ``intercept + baseline_weight * gbm + transformer_weight * logit``."""

    intercept: float
    baseline_weight: float
    transformer_weight: float

    def __call__(self, baseline_log_odds: np.ndarray, transformer_logit: np.ndarray) -> np.ndarray:
        return (
            self.intercept
            + self.baseline_weight * np.asarray(baseline_log_odds, dtype=np.float64)
            + self.transformer_weight * np.asarray(transformer_logit, dtype=np.float64)
        )

    def to_dict(self) -> dict[str, float]:
        return {
            "intercept": self.intercept,
            "baseline_weight": self.baseline_weight,
            "transformer_weight": self.transformer_weight,
        }

    @classmethod
    def from_dict(cls, data: dict) -> StackerWeights:
        try:
            values = {k: float(data[k]) for k in ("intercept", "baseline_weight", "transformer_weight")}
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"hybrid stacker weights {data!r}: need three numbers ({exc})") from exc
        if not all(math.isfinite(v) for v in values.values()):
            raise BundleError(f"hybrid stacker weights {data!r}: must be finite")
        return cls(**values)


class HybridPredictor:
    """Calibrated probabilities from the stacked blend of a LightGBM booster and a transformer.

    The inner transformer keeps its own fast paths (ONNX, bf16, the fp32 check); ``precision`` and
    ``precision_check`` report its choice. ``model``/``tokenizer``/``scaler`` expose the encoder so
    segments (embeddings) and text attributions work as for the transformer.
    """

    kind = "hybrid"

    def __init__(
        self,
        transformer: TransformerPredictor,
        booster,
        feature_names: list[str],
        weights: StackerWeights,
        calibrator: Calibrator,
        *,
        threshold: float = 0.5,
        metadata: dict | None = None,
        num_threads: int = 2,
    ):
        self.transformer = transformer
        self.booster = booster
        self.feature_names = list(feature_names)
        self.weights = weights
        self.calibrator = calibrator
        self.threshold = float(threshold)
        self.metadata = metadata or {}
        self.num_threads = num_threads

    # the encoder, for embeddings-based segments and text-item occlusion
    @property
    def model(self):
        return self.transformer.model

    @property
    def tokenizer(self):
        return self.transformer.tokenizer

    @property
    def scaler(self):
        return self.transformer.scaler

    @property
    def max_length(self) -> int:
        return self.transformer.max_length

    @property
    def pad_id(self) -> int:
        return self.transformer.pad_id

    @property
    def batch_size(self) -> int:
        return self.transformer.batch_size

    @property
    def precision(self):
        return getattr(self.transformer, "precision", None)

    @property
    def precision_check(self):
        return getattr(self.transformer, "precision_check", None)

    def baseline_log_odds(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(
            self.booster.predict(
                numeric_matrix(frame, self.feature_names), raw_score=True, num_threads=self.num_threads
            ),
            dtype=np.float64,
        )

    def log_odds(self, frame: pd.DataFrame) -> np.ndarray:
        """The blend's uncalibrated log-odds."""
        if len(frame) == 0:
            return np.empty(0)
        return self.weights(self.baseline_log_odds(frame), self.transformer.predict_logits(frame))

    def predict_raw(self, frame: pd.DataFrame) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.log_odds(frame)))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.calibrator(self.predict_raw(frame))

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """Per numeric feature, its log-odds contribution through the LightGBM side: ``baseline_weight`` x TreeSHAP.

        Exact for that side (TreeSHAP is additive and the blend is linear); the transformer's side is explained by
        text-item occlusion (:func:`pipelines.models.explain.text_item_effects`).
        """
        contrib = np.asarray(
            self.booster.predict(
                numeric_matrix(frame, self.feature_names), pred_contrib=True, num_threads=self.num_threads
            ),
            dtype=np.float64,
        )
        return self.weights.baseline_weight * contrib[:, : len(self.feature_names)]


def save_hybrid_bundle(
    out_dir,
    *,
    transformer_dir,
    booster,
    feature_names: list[str],
    weights: StackerWeights,
    calibrator: Calibrator,
    threshold: float,
    extra: dict | None = None,
) -> Path:
    """Write a hybrid bundle: a copy of the (sealed) transformer bundle, the LightGBM booster and bundle.json."""
    import shutil

    meta = {
        "format_version": FORMAT_VERSION,
        "kind": "hybrid",
        "feature_names": list(feature_names),
        "model_file": BASELINE_FILE,
        "transformer_dir": TRANSFORMER_DIR,
        "best_iteration": int(booster.best_iteration or booster.current_iteration()),
        "stacker": weights.to_dict(),
        "calibrator": calibrator.to_dict(),
        "threshold": float(threshold),
        "versions": library_versions(),
        "extra": extra or {},
    }

    def fill(tmp: Path) -> None:
        shutil.copytree(Path(transformer_dir), tmp / TRANSFORMER_DIR)
        booster.save_model(str(tmp / BASELINE_FILE), num_iteration=meta["best_iteration"])
        _write_json(tmp / BUNDLE_FILE, meta)

    path = _write_atomically(Path(out_dir), fill)
    logger.info("saved hybrid bundle to %s", path)
    return path


def load_hybrid(root: Path, meta: dict, calibrator: Calibrator, num_threads: int = 2, **transformer_options):
    """The hybrid predictor of a verified bundle directory (the inner transformer bundle is verified again)."""
    from pipelines.models.bundle import load_bundle, load_lightgbm_text

    feature_names = list(meta["feature_names"])
    weights = StackerWeights.from_dict(meta.get("stacker") or {})
    booster = load_lightgbm_text(root, meta)
    if booster.num_feature() != len(feature_names):
        raise BundleError(
            f"hybrid bundle {root}: the booster takes {booster.num_feature()} features, "
            f"bundle.json lists {len(feature_names)}"
        )
    inner_dir = root / meta.get("transformer_dir", TRANSFORMER_DIR)
    inner = load_bundle(inner_dir, num_threads=num_threads, **transformer_options)
    if inner.kind != "transformer" or list(inner.feature_names) != feature_names:
        raise BundleError(f"hybrid bundle {root}: its transformer/ bundle does not take the same features")
    return HybridPredictor(
        inner,
        booster,
        feature_names,
        weights,
        calibrator,
        threshold=meta["threshold"],
        metadata=meta,
        num_threads=num_threads,
    )
