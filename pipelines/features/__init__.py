"""Point-in-time features and text views, computed inside the warehouse in SQL.

Every value at cutoff ``t`` uses only rows strictly before ``t 00:00 UTC``; boundary conventions
are defined once in :mod:`pipelines.features.sql`, the text format in
:mod:`pipelines.features.text_view`.
"""

from pipelines.features.build import (
    CUTOFF_COLUMN,
    ID_COLUMN,
    LABEL_COLUMN,
    SEGMENT_COLUMNS,
    TEXT_COLUMN,
    build_features,
    customer_features,
    feature_columns,
    iter_scoring_features,
    numeric_feature_names,
)
from pipelines.features.sql import feature_definitions, span_days

__all__ = [
    "CUTOFF_COLUMN",
    "ID_COLUMN",
    "LABEL_COLUMN",
    "SEGMENT_COLUMNS",
    "TEXT_COLUMN",
    "build_features",
    "customer_features",
    "feature_columns",
    "feature_definitions",
    "iter_scoring_features",
    "numeric_feature_names",
    "span_days",
]
