"""Run the feature query: training frames for many cutoffs, streamed scoring frames for one."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from pipelines.config import Config
from pipelines.contract import CUTOFF_COLUMN, ID_COLUMN, LABEL_COLUMN, SEGMENT_COLUMNS, TEXT_COLUMN
from pipelines.dates import as_date, utc_midnight
from pipelines.features.btyd import EXPECTED_COLUMN, P_ALIVE_COLUMN, BgNbd, bgnbd_columns, fit_bgnbd
from pipelines.features.privacy import mask_text_column
from pipelines.features.sql import btyd_summary_sql, feature_definitions, feature_params, feature_sql
from pipelines.warehouse import Warehouse

logger = logging.getLogger(__name__)

MODEL_FEATURES = (EXPECTED_COLUMN, P_ALIVE_COLUMN)  # computed in Python from the BG/NBD fit, after the SQL ones
BTYD_INPUTS = ("btyd_frequency", "btyd_recency_days", "btyd_age_days")


def numeric_feature_names(config: Config) -> list[str]:
    """Numeric feature columns, in frame order (they depend on ``dataset.windows_days``)."""
    return [*(f.name for f in feature_definitions(config)), *MODEL_FEATURES]


def feature_columns(config: Config, labels: bool) -> list[str]:
    """Every column of a feature frame, in order."""
    cols = [ID_COLUMN, CUTOFF_COLUMN, *numeric_feature_names(config), TEXT_COLUMN, *SEGMENT_COLUMNS]
    return [*cols, LABEL_COLUMN] if labels else cols


def _normalize_cutoffs(cutoffs: Sequence[dt.date]) -> list[dt.date]:
    out = []
    for c in cutoffs:
        if isinstance(c, dt.datetime):  # a datetime is a date subclass: refuse the ambiguity
            raise TypeError(f"cutoffs are dates (00:00 UTC), got datetime {c!r}")
        out.append(as_date(c))
    if not out:
        raise ValueError("build_features needs at least one cutoff")
    return sorted(set(out))


def _conform(frame: pd.DataFrame, config: Config, labels: bool) -> pd.DataFrame:
    """Same dtypes on every backend, even for an empty result (Postgres loses types then)."""
    cols = feature_columns(config, labels)
    frame = frame.reindex(columns=cols)
    frame[ID_COLUMN] = frame[ID_COLUMN].astype("int64")
    frame[CUTOFF_COLUMN] = pd.to_datetime(frame[CUTOFF_COLUMN]).dt.date if len(frame) else pd.Series([], dtype="object")
    for name in numeric_feature_names(config):
        frame[name] = frame[name].astype("float64")
    for name in (TEXT_COLUMN, *SEGMENT_COLUMNS):
        frame[name] = frame[name].astype("object")
    frame[TEXT_COLUMN] = mask_text_column(frame[TEXT_COLUMN])  # no e-mail/phone/card/address reaches a model
    if labels:
        frame[LABEL_COLUMN] = frame[LABEL_COLUMN].astype("int64")
    return frame.reset_index(drop=True)


def build_features(
    warehouse: Warehouse, config: Config, cutoffs: list[dt.date], *, labels: bool = True
) -> pd.DataFrame:
    """One row per (population customer, cutoff) with features, text view, segments and label.

    Computed by one SQL statement in the warehouse; ``churned`` is included unless ``labels=False``
    (it needs ``horizon_days`` of data after each cutoff; callers check that).
    """
    days = _normalize_cutoffs(cutoffs)
    sql = warehouse.render(feature_sql(config, len(days), labels=labels))
    started = time.perf_counter()
    frame = warehouse.query_df(sql, feature_params(config, days, labels=labels))
    frame = _with_bgnbd(frame, config, {day: None for day in days})
    logger.info(
        "built features for %d rows over %d cutoff(s) (%s .. %s) in %.1f s on %s",
        len(frame),
        len(days),
        days[0],
        days[-1],
        time.perf_counter() - started,
        warehouse.dialect,
    )
    return _conform(frame, config, labels)


def iter_scoring_features(
    warehouse: Warehouse,
    config: Config,
    score_date: dt.date,
    chunk_rows: int,
    id_range: tuple[int, int] | None = None,
) -> Iterator[pd.DataFrame]:
    """The scoring population at cutoff ``score_date`` (no label), in chunks ordered by customer_id.

    Why in customer-id slices: one query over millions of customers (text views, window functions,
    a final sort) needs warehouse memory that grows with the population; a query per slice of
    ``scoring.customers_per_feature_query`` customers keeps it bounded at any scale. ``id_range``
    (inclusive ids) restricts the stream to one shard; the BG/NBD fit still sees the whole population.
    """
    (day,) = _normalize_cutoffs([score_date])
    sql = warehouse.render(feature_sql(config, 1, labels=False, customer_range=True, order_by="p.customer_id"))
    models = {day: fit_population_bgnbd(warehouse, config, day)}
    total = 0
    for lo, hi in population_id_ranges(warehouse, config, day, config.scoring.customers_per_feature_query, id_range):
        params = feature_params(config, [day], labels=False, customer_range=(lo, hi))
        for chunk in warehouse.iter_df(sql, params, chunk_rows=chunk_rows):
            total += len(chunk)
            yield _conform(_with_bgnbd(chunk, config, models), config, labels=False)
    logger.info("streamed scoring features for %d customers at %s", total, day)


def population_id_ranges(
    warehouse: Warehouse,
    config: Config,
    cutoff: dt.date,
    customers_per_range: int,
    id_range: tuple[int, int] | None = None,
) -> list[tuple[int, int]]:
    """Inclusive customer-id ranges holding about ``customers_per_range`` population customers each.

    ``id_range``: only the population ids within these inclusive bounds (one scoring shard).
    """
    start = utc_midnight(cutoff - dt.timedelta(days=config.churn.population_days))
    lo, hi = id_range if id_range is not None else (None, None)
    ids = (
        warehouse.query_arrow(
            warehouse.render(
                "SELECT DISTINCT customer_id FROM {orders} WHERE status = 'completed' "
                "AND ordered_at >= :start AND ordered_at < :end"
                + (" AND customer_id BETWEEN :lo AND :hi" if id_range is not None else "")
                + " ORDER BY customer_id"
            ),
            {"start": start, "end": utc_midnight(cutoff), **({"lo": lo, "hi": hi} if id_range is not None else {})},
        )
        .column(0)
        .to_numpy()
    )
    return [
        (int(ids[i]), int(ids[min(i + customers_per_range, len(ids)) - 1]))
        for i in range(0, len(ids), customers_per_range)
    ]


def customer_features(
    warehouse: Warehouse, config: Config, customer_id: int, cutoff: dt.date, *, labels: bool = False
) -> pd.DataFrame:
    """One customer's row at ``cutoff`` (empty when not in the population); for inspection."""
    days = _normalize_cutoffs([cutoff])
    sql = warehouse.render(feature_sql(config, 1, labels=labels, customer_range=True))
    frame = warehouse.query_df(
        sql, feature_params(config, days, labels=labels, customer_range=(customer_id, customer_id))
    )
    frame = _with_bgnbd(frame, config, {days[0]: fit_population_bgnbd(warehouse, config, days[0])})
    return _conform(frame, config, labels)


def fit_population_bgnbd(warehouse: Warehouse, config: Config, cutoff: dt.date) -> BgNbd | None:
    """BG/NBD fitted on the whole population at ``cutoff`` (orders before it only)."""
    summary = warehouse.query_df(
        warehouse.render(btyd_summary_sql(config)), feature_params(config, [cutoff], labels=False)
    )
    return fit_bgnbd(*(summary[c].to_numpy(dtype=np.float64) for c in BTYD_INPUTS))


def _with_bgnbd(frame: pd.DataFrame, config: Config, models: dict[dt.date, BgNbd | None]) -> pd.DataFrame:
    """Add the BG/NBD columns; a cutoff mapped to None is fitted on the frame's own rows at that cutoff.

    The training frame holds every population customer of each cutoff, so fitting on its rows is the
    same fit as :func:`fit_population_bgnbd`; scoring slices pass the fit of the whole population.
    """
    frame = frame.copy()
    for col in MODEL_FEATURES:
        frame[col] = np.nan
    if frame.empty:
        return frame
    cutoffs = pd.to_datetime(frame[CUTOFF_COLUMN]).dt.date
    for day, model in models.items():
        rows = (cutoffs == day).to_numpy()
        if not rows.any():
            continue
        inputs = [frame.loc[rows, c].to_numpy(dtype=np.float64) for c in BTYD_INPUTS]
        if model is None:
            model = fit_bgnbd(*inputs)
        for col, values in bgnbd_columns(model, config.churn.horizon_days, *inputs).items():
            frame.loc[rows, col] = values
    return frame
