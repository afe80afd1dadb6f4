"""Fit the customer segments with the chosen model and log them to its MLflow run (``segments/``).

Why at training time: scoring only assigns (nearest centroid), so segments are stable from day to day and
change only with a new model. The encoder embedding is the chosen transformer's (or hybrid's) own pooled vector (a
LightGBM model has no encoder: its segments use the behaviour features only). The profile table (size,
churn rate, value per segment on the fit rows) is logged next to the arrays.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.config import Config
from pipelines.contract import CUTOFF_COLUMN, LABEL_COLUMN, TEXT_COLUMN
from pipelines.models.segments import SegmentModel, fit_segments, segment_profile

logger = logging.getLogger(__name__)

SEGMENTS_ARTIFACT = "segments"


def fit_rows(config: Config, train: pd.DataFrame) -> pd.DataFrame:
    """The latest cutoffs of the train split first, at most ``segments.fit_rows`` rows."""
    n = config.segments.fit_rows
    if CUTOFF_COLUMN in train.columns:
        train = train.sort_values(CUTOFF_COLUMN, ascending=False, kind="stable")
    return train.head(n).reset_index(drop=True)


def fit_for_predictor(config: Config, frame: pd.DataFrame, predictor) -> tuple[SegmentModel, np.ndarray | None]:
    """(segment model, the fit rows' embeddings or None) for ``predictor``'s features and encoder."""
    from pipelines.models.explain import embeddings

    seg = config.segments
    emb = None
    reads_text = getattr(predictor, "kind", None) in ("transformer", "hybrid") and hasattr(predictor, "model")
    if reads_text and seg.embedding_weight > 0:
        emb = embeddings(predictor, frame[TEXT_COLUMN].tolist())
    model = fit_segments(
        frame,
        list(predictor.feature_names),
        embeddings=emb,
        n_segments=seg.n_segments,
        pca_components=seg.pca_components,
        embedding_weight=seg.embedding_weight,
        switch_margin=seg.switch_margin,
        seed=config.training.seed,
    )
    return model, emb


def log_segments(config: Config, sets, predictor) -> SegmentModel:
    """Fit on the train split's latest rows and log arrays, names and profile under ``segments/``."""
    import mlflow

    frame = fit_rows(config, sets.train)
    model, emb = fit_for_predictor(config, frame, predictor)
    assigned = model.predict(frame, emb)
    labels = frame[LABEL_COLUMN].to_numpy() if LABEL_COLUMN in frame.columns else None
    profile = segment_profile(model, assigned, frame, labels)
    model.profile = profile.to_dict(orient="records")
    with tempfile.TemporaryDirectory(prefix="churn-segments-") as tmp:
        out = model.save(Path(tmp) / SEGMENTS_ARTIFACT)
        profile.to_csv(out / "profile.csv", index=False)
        mlflow.log_artifacts(str(out), artifact_path=SEGMENTS_ARTIFACT)
    mlflow.log_metric("segments_n", float(len(model.names)))
    logger.info(
        "segments (%s): %s",
        "embedding + behaviour" if model.uses_embedding else "behaviour only",
        "; ".join(f"{r['segment_name']} {r['customers']}" for r in model.profile),
    )
    return model
