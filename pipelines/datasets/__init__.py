"""Materialized, time-split training sets (Parquet + manifest)."""

from pipelines.datasets.build import (
    DatasetIntegrityError,
    InsufficientHistoryError,
    TrainingSets,
    build_training_sets,
    choose_cutoffs,
    load_training_sets,
)

__all__ = [
    "DatasetIntegrityError",
    "InsufficientHistoryError",
    "TrainingSets",
    "build_training_sets",
    "choose_cutoffs",
    "load_training_sets",
]
