"""Churn models: the encoder + numeric network, calibration, and pickle-free bundles."""

from pipelines.models.bundle import (
    BaselinePredictor,
    BundleError,
    ChurnPredictor,
    TransformerPredictor,
    load_bundle,
    read_bundle_meta,
    save_baseline_bundle,
    save_transformer_bundle,
)
from pipelines.models.calibration import Calibrator, fit_calibrator
from pipelines.models.hybrid import HybridPredictor, save_hybrid_bundle
from pipelines.models.network import (
    ChurnHead,
    ChurnModel,
    ModelSetupError,
    NumericScaler,
    build_churn_model,
    resolve_encoder_path,
)

__all__ = [
    "BaselinePredictor",
    "BundleError",
    "Calibrator",
    "ChurnHead",
    "ChurnModel",
    "ChurnPredictor",
    "HybridPredictor",
    "ModelSetupError",
    "NumericScaler",
    "TransformerPredictor",
    "build_churn_model",
    "fit_calibrator",
    "load_bundle",
    "read_bundle_meta",
    "resolve_encoder_path",
    "save_baseline_bundle",
    "save_hybrid_bundle",
    "save_transformer_bundle",
]
