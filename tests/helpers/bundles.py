"""A real transformer bundle of a freshly built (untrained) model, for tests of what reads bundles."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from pipelines.models import Calibrator, NumericScaler, build_churn_model, save_transformer_bundle
from pipelines.models.network import load_tokenizer


def tiny_transformer_bundle(out: Path, model_config, frame: pd.DataFrame, features: list[str], **options) -> Path:
    """``model_config``'s network (seed 0) with a Platt calibrator and threshold 0.4, saved to ``out``.

    ``options`` go to :func:`save_transformer_bundle` (e.g. ``onnx=False``).
    """
    torch.manual_seed(0)
    model = build_churn_model(model_config, len(features))
    return save_transformer_bundle(
        out,
        model=model,
        tokenizer=load_tokenizer(model_config.encoder),
        scaler=NumericScaler.fit(frame, features),
        calibrator=Calibrator("platt", a=0.8, b=-0.1),
        threshold=0.4,
        max_length=model_config.max_length,
        **options,
    )
