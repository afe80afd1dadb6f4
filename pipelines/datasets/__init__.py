"""Materialized, time-split training sets (Parquet + manifest)."""

from pipelines.datasets.build import (
    DatasetIntegrityError,
    InsufficientHistoryError,
    TrainingSets,
    build_training_sets,
    cap_train_rows,
    choose_cutoffs,
    load_training_sets,
)
from pipelines.datasets.reference import drift_reference_sample

__all__ = [
    "DatasetIntegrityError",
    "InsufficientHistoryError",
    "TrainingSets",
    "build_training_sets",
    "cap_train_rows",
    "choose_cutoffs",
    "drift_reference_sample",
    "load_training_sets",
]
