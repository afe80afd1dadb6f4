"""Evidently (0.7 API) drift report and the numbers we keep from it.

The report compares a reference sample (feature rows of the latest training cutoffs, logged with the
model version, ``prediction`` = the model's calibrated probability) with the current scoring population
(features recomputed for the score date, ``prediction`` = the written ``churn_probability``):

- ``DataDriftPreset(columns=numeric features)``: one ``ValueDrift`` per feature with
  ``monitoring.feature_drift_method`` / ``feature_drift_threshold`` and a ``DriftedColumnsCount``
  (count and share of drifted features);
- ``ValueDrift("prediction", method="wasserstein_guarded")``: prediction (score) drift;
- ``DataSummaryPreset``: row/column counts, missing values, min/max/mean/quantiles (data quality).

Ratio features (``monitoring.ratio_features``) are not Evidently columns: :func:`rate_change` compares
their population rates and the monitor adds the result to the summary (method ``rate_change``).

Numbers are read from ``snapshot.dict()``: ``{"metrics": [{"metric_name", "config": {"type":
"evidently:metric_v2:ValueDrift", "column", "method", "threshold"}, "value"}, ...], "tests": [{"status",
"metric_config": {"metric_id"}}, ...]}``. A feature's drifted flag is Evidently's own test verdict
(``status == "FAIL"``) when the test is present, else the value compared with the threshold in the
method's direction (p-value tests drift *below* it, distances at or above it).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from pipelines.monitoring.verdict import finite_or_none

logger = logging.getLogger(__name__)

PREDICTION_COLUMN = "prediction"
GUARDED_WASSERSTEIN = "wasserstein_guarded"
PREDICTION_DRIFT_METHOD = GUARDED_WASSERSTEIN
TENURE_SUFFIX = "_per_tenure_month"
# Methods whose drift score is a p-value: drift when the score is *below* the threshold.
P_VALUE_METHODS = frozenset(
    {
        "ks",
        "chisquare",
        "z",
        "fisher_exact",
        "g_test",
        "t_test",
        "mannw",
        "anderson",
        "cramer_von_mises",
        "epps_singleton",
        "empirical_mmd",
    }
)


# The denominator is at least this share of the pooled std: the distance stays <= 2 / POOLED_FLOOR.
POOLED_FLOOR = 0.5


def guarded_wasserstein(reference: Any, current: Any) -> float:
    """Wasserstein-1 distance / max(reference std, 0.5 * pooled std); always within [0, 4].

    Why: Evidently's normed Wasserstein divides by the reference std alone (floored at 0.001), so a
    near-constant reference column (a rate that was 0 for almost everyone) turns a small absolute move
    into 157-406. The pooled std is that of the equal-weight mixture of both samples; with independent
    coupling W1 <= E|X - Y| <= sqrt(E(X - Y)^2) <= 2 * pooled std, hence the bound. Unless the reference
    is less than half as spread as the mixture (degenerate, or the current sample far wider), the value
    is exactly Evidently's, so its thresholds carry over.
    """
    from scipy import stats

    ref = np.asarray(reference, dtype="float64")
    cur = np.asarray(current, dtype="float64")
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if len(ref) == 0 or len(cur) == 0:
        return 0.0
    distance = float(stats.wasserstein_distance(ref, cur))
    if distance == 0.0:
        return 0.0
    pooled = math.sqrt((ref.var() + cur.var()) / 2 + (ref.mean() - cur.mean()) ** 2 / 4)
    return distance / max(float(ref.std()), POOLED_FLOOR * pooled)


def _register_guarded_wasserstein() -> None:
    """Make ``wasserstein_guarded`` an Evidently method name (its legacy stattest registry, used by 0.7)."""
    from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
    from evidently.legacy.core import ColumnType

    def impl(reference_data, current_data, feature_type, threshold):
        value = guarded_wasserstein(reference_data, current_data)
        return value, value >= threshold

    register_stattest(
        StatTest(
            name=GUARDED_WASSERSTEIN,
            display_name="Wasserstein distance (normed by max(reference std, pooled std / 2); 0..4)",
            allowed_feature_types=[ColumnType.Numerical],
            default_threshold=0.1,
        ),
        impl,
    )


RATE_METHOD = "rate_change"


@dataclass(frozen=True)
class RateChange:
    """A ratio feature compared as population rates: ``value`` = max(cur/ref, ref/cur) - 1, ``z`` = the
    difference of the rates in standard errors; None where a side has no denominator (no activity)."""

    numerator: str
    denominator: str
    reference_rate: float | None
    current_rate: float | None
    value: float | None
    z: float | None

    def drifted(self, threshold: float, min_z: float) -> bool:
        return self.value is not None and self.value >= threshold and abs(self.z or 0.0) >= min_z

    @property
    def note(self) -> str:
        """What the value rests on (the ``monitoring_drift`` row's note)."""

        def fmt(x: float | None) -> str:
            return "-" if x is None else f"{x:.4g}"

        return (
            f"{RATE_METHOD}: sum {self.numerator} / sum {self.denominator} "
            f"{fmt(self.reference_rate)} -> {fmt(self.current_rate)}, z {fmt(self.z)}"
        )


def _rate(frame: pd.DataFrame, numerator: str, denominator: str) -> tuple[float, float, int] | None:
    """(rate, its variance, customers) by the ratio estimator with customers as clusters."""
    y = pd.to_numeric(frame[numerator], errors="coerce").to_numpy(dtype="float64")
    x = pd.to_numeric(frame[denominator], errors="coerce").to_numpy(dtype="float64")
    ok = np.isfinite(x) & np.isfinite(y)
    y, x = y[ok], x[ok]
    total = float(x.sum())
    if len(x) < 2 or total <= 0:
        return None
    rate = float(y.sum()) / total
    n = len(x)
    variance = float(((y - rate * x) ** 2).sum()) / total**2 * n / (n - 1)
    return rate, variance, n


def rate_change(reference: pd.DataFrame, current: pd.DataFrame, numerator: str, denominator: str) -> RateChange:
    """Compare sum(numerator) / sum(denominator) of two samples (the statistic for ``ratio_features``).

    Why not a per-customer distribution: most customers have a handful of sessions in 30 days, so their own
    ratio is mostly sampling noise whose shape moves with the season (normed distances of 0.05-0.12 without
    drift) while a doubled support rate moves it by only ~0.2; the population rate carries the whole change
    (+48-76% in the injected drift's first month, at most 26% without drift). ``z`` guards small samples.
    """
    ref, cur = _rate(reference, numerator, denominator), _rate(current, numerator, denominator)
    if ref is None or cur is None:
        return RateChange(numerator, denominator, ref and ref[0], cur and cur[0], None, None)
    (r_ref, v_ref, _), (r_cur, v_cur, _) = ref, cur
    low, high = sorted((r_ref, r_cur))
    value = 0.0 if high == 0 else (high / low - 1.0 if low > 0 else math.inf)
    se = math.sqrt(v_ref + v_cur)
    z = (r_cur - r_ref) / se if se > 0 else (0.0 if r_cur == r_ref else math.copysign(math.inf, r_cur - r_ref))
    return RateChange(
        numerator,
        denominator,
        r_ref,
        r_cur,
        min(value, RATE_CHANGE_CAP),
        max(-RATE_CHANGE_CAP, min(z, RATE_CHANGE_CAP)),
    )


# A rate from 0 to anything is "infinitely" more; stored as this (finite, so every table and chart can hold it).
RATE_CHANGE_CAP = 1e6


def add_tenure_rates(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """``frame`` plus ``<name>_per_tenure_month`` = value * 30 / clip(min(tenure_days, 365), 30, 365).

    Why: a 365-day count grows with how long the customer has existed in the window, so a young or
    growing shop shows "drift" month after month; the rate per 30 days of tenure does not. Names the frame
    lacks (or a frame without ``tenure_days``) are skipped.
    """
    if "tenure_days" not in frame.columns:
        return frame
    months = np.clip(np.minimum(pd.to_numeric(frame["tenure_days"], errors="coerce"), 365.0), 30.0, 365.0) / 30.0
    extra = {
        f"{name}{TENURE_SUFFIX}": pd.to_numeric(frame[name], errors="coerce") / months
        for name in names
        if name in frame.columns
    }
    return frame.assign(**extra) if extra else frame


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    value: float
    threshold: float | None
    method: str | None
    drifted: bool


@dataclass
class DriftSummary:
    """What monitoring keeps from an Evidently snapshot."""

    features: dict[str, ColumnDrift] = field(default_factory=dict)
    prediction: ColumnDrift | None = None
    drifted_count: float | None = None
    drift_share: float | None = None  # share of numeric features that drifted
    missing_share: dict[str, float] = field(default_factory=dict)  # current data, per column
    row_count: float | None = None

    @property
    def drifted_features(self) -> list[str]:
        return sorted(name for name, d in self.features.items() if d.drifted)

    def restricted_to(self, names: Sequence[str]) -> DriftSummary:
        """The same summary over ``names`` only, with the drifted share recomputed over them.

        Why: the report shows every feature, but the retrain decision counts only the monitored ones
        (seasonal and trending features drift without anything being wrong).
        """
        keep = set(names)
        features = {name: d for name, d in self.features.items() if name in keep}
        drifted = sum(1 for d in features.values() if d.drifted)
        return replace(
            self,
            features=features,
            drifted_count=float(drifted),
            drift_share=drifted / len(features) if features else None,
        )


def build_report(features: Sequence[str], config, *, data_summary: bool = True) -> Any:
    """The Evidently ``Report`` monitoring runs (not yet run).

    ``data_summary=False`` leaves out ``DataSummaryPreset`` (missing shares, quantiles: ~3/4 of the run
    time) when only the drift decision is wanted (the benchmark's many comparisons)."""
    from evidently import Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    mon = config.monitoring
    return Report(
        [
            DataDriftPreset(
                columns=list(features),
                num_method=mon.feature_drift_method,
                num_threshold=mon.feature_drift_threshold,
                drift_share=mon.drift_share_threshold,
            ),
            ValueDrift(
                column=PREDICTION_COLUMN, method=PREDICTION_DRIFT_METHOD, threshold=mon.prediction_drift_threshold
            ),
            *([DataSummaryPreset(columns=[*features, PREDICTION_COLUMN])] if data_summary else []),
        ],
        include_tests=True,
    )


def run_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Sequence[str],
    config,
    metadata: dict[str, str] | None = None,
    *,
    data_summary: bool = True,
):
    """Run the report over ``features`` + ``prediction``; returns the Evidently snapshot."""
    from evidently import DataDefinition, Dataset

    _register_guarded_wasserstein()
    columns = [*features, PREDICTION_COLUMN]
    definition = DataDefinition(numerical_columns=columns)
    ref = Dataset.from_pandas(_numeric(reference, columns), data_definition=definition)
    cur = Dataset.from_pandas(_numeric(current, columns), data_definition=definition)
    report = build_report(features, config, data_summary=data_summary)
    # Constant columns make Evidently's correlation checks divide by zero: harmless, but noisy.
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return report.run(current_data=cur, reference_data=ref, metadata=metadata or {})


def _numeric(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    return frame.loc[:, list(columns)].apply(pd.to_numeric, errors="coerce").astype("float64").reset_index(drop=True)


def summarize_snapshot(snapshot_dict: dict[str, Any], prediction_column: str = PREDICTION_COLUMN) -> DriftSummary:
    """Extract drift numbers from ``snapshot.dict()`` (tolerant of missing pieces and extra metrics)."""
    statuses: dict[str, str] = {}
    for test in snapshot_dict.get("tests") or []:
        metric_id = (test.get("metric_config") or {}).get("metric_id")
        status = str(test.get("status", "")).upper()
        if metric_id and status:
            # A metric may carry several tests: any failure means drift.
            statuses[metric_id] = "FAIL" if "FAIL" in (status, statuses.get(metric_id)) else status

    summary = DriftSummary()
    for metric in snapshot_dict.get("metrics") or []:
        cfg = metric.get("config") or {}
        kind = _metric_kind(metric)
        value = metric.get("value")
        if kind == "ValueDrift":
            column = cfg.get("column")
            score = finite_or_none(value)
            if column is None or score is None:
                logger.warning("Evidently ValueDrift for %r has no usable value (%r); skipped", column, value)
                continue
            threshold = finite_or_none(cfg.get("threshold"))
            method = cfg.get("method")
            status = statuses.get(metric.get("id", ""))
            drifted = status == "FAIL" if status in ("FAIL", "SUCCESS") else _crosses(score, threshold, method)
            drift = ColumnDrift(column, score, threshold, method, drifted)
            if column == prediction_column:
                summary.prediction = drift
            else:
                summary.features[column] = drift
        elif kind == "DriftedColumnsCount" and isinstance(value, dict):
            summary.drifted_count = finite_or_none(value.get("count"))
            summary.drift_share = finite_or_none(value.get("share"))
        elif kind == "MissingValueCount" and cfg.get("column") and isinstance(value, dict):
            share = finite_or_none(value.get("share"))
            if share is not None:
                summary.missing_share[cfg["column"]] = share
        elif kind == "RowCount":
            summary.row_count = finite_or_none(value)
    if summary.drift_share is None and summary.features:
        summary.drift_share = len(summary.drifted_features) / len(summary.features)
        summary.drifted_count = float(len(summary.drifted_features))
    return summary


def _metric_kind(metric: dict[str, Any]) -> str:
    kind = str((metric.get("config") or {}).get("type", ""))
    if kind:
        return kind.rsplit(":", 1)[-1]
    return str(metric.get("metric_name", "")).split("(", 1)[0]


def _crosses(score: float, threshold: float | None, method: str | None) -> bool:
    if threshold is None:
        return False
    if method and str(method).lower() in P_VALUE_METHODS:
        return score < threshold
    return score >= threshold
