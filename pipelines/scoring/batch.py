"""Batch scoring: every active customer's calibrated churn probability, written back to the warehouse.

Why this shape:

- **One exact model version.** The caller (DAG or CLI) resolves the champion *once* and passes the
  version down, so a promotion mid-run can never mix two models in one partition.
- **Bounded memory.** Features stream from the warehouse in ``scoring.chunk_rows`` chunks and are
  dropped after prediction; only ``customer_id`` (int64) and the probability (float64) are kept,
  16 bytes a customer (16 MB for 1M customers). The partition is then written once.
- **Validate, then write atomically.** Probabilities must be finite and in [0, 1], every customer
  appears exactly once and the population is not empty; otherwise :class:`ScoringError` names
  ``churn_scores.<column>`` and nothing is written. The write is
  ``Warehouse.replace_partitions`` of ``churn_scores``, ``churn_score_reasons`` and ``customer_segments``
  for ``score_date`` in one step: a rerun or backfill replaces the day, a failure writing any of the
  three leaves all three as they were.

Monitoring does not need a side file from this job: :func:`pipelines.monitoring.monitor_scores`
recomputes the current features for the score date in SQL (any worker can run it, any time later)
and joins the scores written here.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.contract import CHURN_SCORE_REASONS, CHURN_SCORES, CUSTOMER_SEGMENTS, ID_COLUMN, RAW_TABLES, ExitCode
from pipelines.dates import as_date, utc_midnight
from pipelines.scoring.reasons import ScoreDetails, append_columns
from pipelines.scoring.sentiment import refresh_in

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from pipelines.config import Config
    from pipelines.warehouse import Warehouse

logger = logging.getLogger(__name__)

PROGRESS_EVERY_S = 10.0
PREDICT_SLICE_MIN_ROWS = 2_048  # rows per predict_proba call (progress granularity)


class ScoringError(RuntimeError):
    """Scores failed validation (or the model cannot be used); nothing was written.

    ``exit_code`` makes ``churn score`` print the message instead of a traceback.
    """

    exit_code = ExitCode.SCORING


def assign_risk_tiers(probabilities: Iterable[float] | np.ndarray, tiers: Mapping[str, float]) -> np.ndarray:
    """Tier name for each probability: the highest tier whose lower bound the probability reaches.

    ``tiers`` maps name -> lower bound (``scoring.risk_tiers``; the lowest bound is 0.0, validated
    by the config). A probability exactly on a bound gets the higher tier.
    """
    if not tiers:
        raise ValueError("risk_tiers is empty")
    ordered = sorted(tiers.items(), key=lambda item: item[1])
    names = np.array([name for name, _ in ordered], dtype=object)
    bounds = np.array([bound for _, bound in ordered], dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    index = np.searchsorted(bounds, p, side="right") - 1
    return names[np.clip(index, 0, len(names) - 1)]


def population_count(warehouse: Warehouse, config: Config, score_date: dt.date) -> int:
    """Customers in the scoring population (>= 1 completed order in the lookback before the date).

    Used for progress logging and as a cross-check of the feature stream; the feature SQL in
    :mod:`pipelines.features` is what defines the scored rows.
    """
    cutoff = utc_midnight(score_date)
    start = cutoff - dt.timedelta(days=config.churn.population_days)
    sql = warehouse.render(
        "SELECT COUNT(DISTINCT customer_id) FROM {orders} "
        "WHERE status = 'completed' AND ordered_at >= :start AND ordered_at < :cutoff"
    )
    return int(warehouse.scalar(sql, {"start": start, "cutoff": cutoff}) or 0)


def check_scoring_inputs(config: Config) -> None:
    """Fail fast, naming table and column, when the tables scoring reads or writes do not match the contract.

    Runs before any feature query and before the model is loaded: a dropped, renamed or retyped raw column
    raises :class:`pipelines.warehouse.SchemaMismatchError` (exit code 10) instead of a SQL binder error.
    """
    from pipelines.warehouse import open_warehouse

    with open_warehouse(config) as wh:
        if wh.table_exists(CHURN_SCORES.name):  # a warehouse of an older version gains the new columns and tables
            wh.init_schema((CHURN_SCORES, CHURN_SCORE_REASONS, CUSTOMER_SEGMENTS))
        wh.check_contract([*RAW_TABLES, CHURN_SCORES])


def score_customers(config: Config, score_date: dt.date | str, model_version: str, run_id: str) -> dict[str, Any]:
    """Score the population of ``score_date`` with registered ``model_version`` and write ``churn_scores``.

    Returns ``{"rows", "tiers": {tier: count}, "model_name", "model_version", "score_date", "seconds",
    "customers_per_second"}``. Raises :class:`ScoringError` (nothing written) when outputs are invalid.
    """
    from pipelines.registry import load_model_version
    from pipelines.warehouse import open_warehouse

    score_date = as_date(score_date)
    model_version = _check_version(model_version)
    if not run_id:
        raise ValueError("run_id is required (the Airflow run id or a CLI run id)")
    model_name = config.registry.model_name
    started = time.perf_counter()

    with open_warehouse(config, config.scoring.duckdb_memory_limit) as wh:
        # before the model loads and before any query: a drifted table fails in a second, named
        if wh.table_exists(CHURN_SCORES.name):  # a warehouse of an older version gains the new columns and tables
            wh.init_schema((CHURN_SCORES, CHURN_SCORE_REASONS, CUSTOMER_SEGMENTS))
        wh.check_contract([*RAW_TABLES, CHURN_SCORES])
        sentiment = refresh_in(wh, config, score_date, model_version)  # the sentiment_* features read it
        # precision (bf16 on AMX CPUs and GPUs by default) is checked against fp32 on the first customers.
        predictor = load_model_version(config, model_version, **config.scoring.predictor_options())
        config = config_for_model(config, predictor, model_version)
        logger.info(
            "scoring %s with %s v%s (%s model), run %s",
            score_date,
            model_name,
            model_version,
            getattr(predictor, "kind", "?"),
            run_id,
        )
        expected = population_count(wh, config, score_date)
        details = ScoreDetails.for_run(wh, config, predictor, score_date, model_version)  # value, reasons, segments
        ids, probs = _score_stream(wh, config, predictor, score_date, expected, started, details.add)
        _validate_scores(ids, probs, score_date, expected)
        tiers = assign_risk_tiers(probs, config.scoring.risk_tiers)
        table = build_scores_table(ids, probs, tiers, score_date, model_name, model_version, run_id)
        table = append_columns(table, details.score_columns(wh, ids, probs, tiers))
        # scores, reasons and segments of the day in one atomic replace: never new scores beside old reasons
        written = wh.replace_partitions([(CHURN_SCORES, table), *details.side_tables()], "score_date", score_date)[
            CHURN_SCORES.name
        ]

    seconds = time.perf_counter() - started
    names, counts = np.unique(tiers, return_counts=True)
    found = dict(zip(names.tolist(), counts.tolist(), strict=True))
    tier_counts = {
        name: int(found.get(name, 0)) for name in sorted(config.scoring.risk_tiers, key=config.scoring.risk_tiers.get)
    }
    result = {
        "rows": int(written),
        "tiers": tier_counts,
        "model_name": model_name,
        "model_version": model_version,
        "score_date": score_date.isoformat(),
        "run_id": run_id,
        "seconds": round(seconds, 3),
        "customers_per_second": round(written / seconds, 1) if seconds > 0 else None,
        # the transformer's numeric precision after its fp32 check (absent for tree models)
        "precision": getattr(predictor, "precision", None),
        "precision_check": getattr(predictor, "precision_check", None),
        **details.summary(),
        "review_sentiment": sentiment,
    }
    logger.info("wrote %d scores for %s (tiers %s) in %.1f s", written, score_date, tier_counts, seconds)
    return result


# -- model -------------------------------------------------------------------------------------------
def config_for_model(config: Config, predictor: Any, model_version: str) -> Config:
    """``config`` with the text-view style the model was trained on: a model reads the wording it learned.

    Why not refuse: the style is the model's property, recorded in its bundle, so there is nothing to guess; the
    switch is logged so a reader of the run knows why the text views differ from ``dataset.text_style``.
    """
    from pipelines.models.bundle import bundle_text_style

    style = bundle_text_style(predictor)
    if style is None or style == config.dataset.text_style:
        return config
    logger.warning(
        "model v%s was trained on %s text views: scoring builds %s text views (dataset.text_style is %s)",
        model_version,
        style,
        style,
        config.dataset.text_style,
    )
    return config.with_overrides({"dataset": {"text_style": style}})


def predict_in_batches(predictor: Any, frame: pd.DataFrame, batch_size: int) -> np.ndarray:
    """Calibrated probabilities for ``frame``; forward passes of at most ``batch_size`` rows.

    The registry's transformer predictor batches by itself (``batch_size`` set at load, rows sorted by
    token length so padding is minimal), so it gets the whole chunk, as does a tree model (batching a
    GBM only adds overhead). A transformer-kind predictor without its own ``batch_size`` is fed slices.
    """
    predict = predictor.predict_proba
    if (
        getattr(predictor, "kind", None) != "transformer"
        or hasattr(predictor, "batch_size")
        or len(frame) <= batch_size
    ):
        return _as_probability_vector(predict(frame), len(frame))
    parts = [
        _as_probability_vector(predict(frame.iloc[start : start + batch_size]), min(batch_size, len(frame) - start))
        for start in range(0, len(frame), batch_size)
    ]
    return np.concatenate(parts)


def _as_probability_vector(output: Any, n: int) -> np.ndarray:
    p = np.asarray(output, dtype=np.float64)
    if p.ndim == 2 and p.shape[1] == 2:  # sklearn-style [P(0), P(1)]
        p = p[:, 1]
    p = p.reshape(-1) if p.ndim == 2 and 1 in p.shape else p
    if p.ndim != 1 or len(p) != n:
        raise ScoringError(
            f"churn_scores.churn_probability: the model returned shape {np.shape(output)} "
            f"for {n} customers (expected {n} probabilities); nothing was written"
        )
    return p


# -- streaming ---------------------------------------------------------------------------------------
def _score_stream(
    wh: Warehouse,
    config: Config,
    predictor: Any,
    score_date: dt.date,
    expected: int,
    started: float,
    on_slice: Callable[[pd.DataFrame, np.ndarray], None] | None = None,
    id_range: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    from pipelines.features import iter_scoring_features

    id_parts: list[np.ndarray] = []
    prob_parts: list[np.ndarray] = []
    done = 0
    last_log = started
    # Progress is logged inside a chunk too: a CPU transformer may need minutes for one chunk.
    # a transformer predictor resolved its device's default at load; 32 only for stand-ins without one
    batch_size = config.scoring.batch_size or getattr(predictor, "batch_size", None) or 32
    slice_rows = max(PREDICT_SLICE_MIN_ROWS, 32 * batch_size)
    for chunk in iter_scoring_features(wh, config, score_date, config.scoring.chunk_rows, id_range):
        if chunk is None or len(chunk) == 0:
            continue
        if ID_COLUMN not in chunk.columns:
            raise ScoringError(f"churn_scores.customer_id: the feature frame has no {ID_COLUMN} column")
        if chunk[ID_COLUMN].isna().any():
            raise ScoringError(
                f"churn_scores.customer_id: {int(chunk[ID_COLUMN].isna().sum())} feature row(s) "
                "without a customer id; nothing was written"
            )
        ids = chunk[ID_COLUMN].to_numpy(dtype=np.int64, copy=True)
        _check_finite_features(chunk, _numeric_features(config, predictor), ids, score_date)
        for start in range(0, len(chunk), slice_rows):
            piece = chunk.iloc[start : start + slice_rows]
            probs = predict_in_batches(predictor, piece, batch_size)
            _check_probabilities(ids[start : start + len(piece)], probs, score_date)  # fail early, write nothing
            if on_slice is not None:
                on_slice(piece, probs)
            prob_parts.append(probs)
            done += len(piece)
            now = time.perf_counter()
            if now - last_log >= PROGRESS_EVERY_S or (expected and done >= expected):
                _log_progress(done, expected, now - started)
                last_log = now
        id_parts.append(ids)
        del chunk
    if not id_parts:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    return np.concatenate(id_parts), np.concatenate(prob_parts)


def _log_progress(done: int, expected: int, seconds: float) -> None:
    rate = done / max(seconds, 1e-9)
    if expected:
        eta = max(expected - done, 0) / rate if rate > 0 else float("nan")
        logger.info(
            "scored %d / %d customers (%.0f%%), %.0f customers/s, ~%.0f s left",
            done,
            expected,
            100.0 * done / expected,
            rate,
            eta,
        )
    else:
        logger.info("scored %d customers, %.0f customers/s", done, rate)


# -- validation --------------------------------------------------------------------------------------
def _numeric_features(config: Config, predictor: Any) -> list[str]:
    from pipelines.features import numeric_feature_names

    return list(dict.fromkeys([*numeric_feature_names(config), *getattr(predictor, "feature_names", [])]))


def _check_finite_features(chunk: pd.DataFrame, names: list[str], ids: np.ndarray, score_date: dt.date) -> None:
    """NaN/inf features (e.g. from a NaN order total) would be scored silently: fail before any score is kept."""
    import pandas as pd

    names = [n for n in names if n in chunk.columns]
    values = chunk[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        columns = [n for n, hit in zip(names, bad.any(axis=0), strict=True) if hit]
        rows = bad.any(axis=1)
        raise ScoringError(
            f"feature {columns[0]}: {int(rows.sum())} customer(s) have non-finite feature values (NaN/inf) for "
            f"score_date {score_date} (e.g. customer_id {_examples(ids, rows)}; features {', '.join(columns)}); "
            "check the raw numbers with churn validate; nothing was written"
        )


def _examples(ids: np.ndarray, mask: np.ndarray, k: int = 5) -> str:
    return ", ".join(str(int(i)) for i in ids[mask][:k])


def _check_probabilities(ids: np.ndarray, probs: np.ndarray, score_date: dt.date) -> None:
    nonfinite = ~np.isfinite(probs)
    if nonfinite.any():
        raise ScoringError(
            f"churn_scores.churn_probability: {int(nonfinite.sum())} value(s) are not finite (NaN/inf) for "
            f"score_date {score_date} (e.g. customer_id {_examples(ids, nonfinite)}); nothing was written"
        )
    outside = (probs < 0.0) | (probs > 1.0)
    if outside.any():
        raise ScoringError(
            f"churn_scores.churn_probability: {int(outside.sum())} value(s) outside [0, 1] for score_date "
            f"{score_date} (min {probs.min():.4g}, max {probs.max():.4g}; e.g. customer_id "
            f"{_examples(ids, outside)}); nothing was written"
        )


def _validate_scores(ids: np.ndarray, probs: np.ndarray, score_date: dt.date, expected: int) -> None:
    if len(ids) == 0:
        raise ScoringError(
            f"churn_scores: the population for score_date {score_date} is empty (no customer with a completed "
            "order in the lookback window before it); nothing was written"
        )
    if len(ids) != len(probs):
        raise ScoringError(f"churn_scores.churn_probability: {len(probs)} probabilities for {len(ids)} customers")
    _check_probabilities(ids, probs, score_date)
    unique, counts = np.unique(ids, return_counts=True)
    if len(unique) != len(ids):
        dup = unique[counts > 1]
        raise ScoringError(
            f"churn_scores.customer_id: {len(dup)} customer(s) appear more than once for score_date {score_date} "
            f"(e.g. {', '.join(str(int(i)) for i in dup[:5])}); expected exactly one row per customer; "
            "nothing was written"
        )
    if expected and len(ids) != expected:
        logger.warning(
            "scored %d customers but %d have a completed order in the lookback window before %s; "
            "check the feature population",
            len(ids),
            expected,
            score_date,
        )


# -- output ------------------------------------------------------------------------------------------
def build_scores_table(
    ids: np.ndarray,
    probs: np.ndarray,
    tiers: np.ndarray,
    score_date: dt.date,
    model_name: str,
    model_version: str,
    run_id: str,
    scored_at: dt.datetime | None = None,
) -> pa.Table:
    """The ``churn_scores`` rows as Arrow, constant columns dictionary-encoded (cheap for 1M rows)."""
    import pyarrow as pa

    n = len(ids)
    scored_at = scored_at or dt.datetime.now(dt.UTC)

    def constant(value: Any, type_: pa.DataType) -> pa.Array:
        return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int8)), pa.array([value], type_)).cast(type_)

    tier_names = sorted(set(tiers.tolist()))
    tier_codes = np.searchsorted(np.array(tier_names, dtype=object), tiers).astype(np.int8)
    return pa.table(
        {
            "customer_id": pa.array(ids, pa.int64()),
            "score_date": constant(score_date, pa.date32()),
            "churn_probability": pa.array(probs, pa.float64()),
            "risk_tier": pa.DictionaryArray.from_arrays(pa.array(tier_codes), pa.array(tier_names, pa.string())).cast(
                pa.string()
            ),
            "model_name": constant(model_name, pa.string()),
            "model_version": constant(str(model_version), pa.string()),
            "run_id": constant(run_id, pa.string()),
            "scored_at": constant(scored_at, pa.timestamp("us", tz="UTC")),
        }
    )


# -- helpers -----------------------------------------------------------------------------------------
def _check_version(model_version: Any) -> str:
    version = str(model_version).strip() if model_version is not None else ""
    if not version.isdigit():
        raise ScoringError(
            f"model_version {model_version!r} is not a registered version number; scoring loads one exact version "
            "(resolve the champion first, e.g. `churn score` without --model-version), never 'latest'"
        )
    return version
