"""Time-split training sets: features and labels at several past cutoffs, written as Parquet.

Why split by time and not at random: a customer's rows at neighbouring cutoffs are near copies, and
production always predicts the future from the past; validation and test therefore use strictly
later cutoffs than training, and every cutoff's label horizon is fully observed by ``as_of``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.config import Config
from pipelines.contract import ExitCode
from pipelines.dates import as_date
from pipelines.features import (
    CUTOFF_COLUMN,
    ID_COLUMN,
    LABEL_COLUMN,
    SEGMENT_COLUMNS,
    TEXT_COLUMN,
    build_features,
    numeric_feature_names,
    span_days,
)
from pipelines.warehouse import open_warehouse

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


class InsufficientHistoryError(ValueError):
    """The warehouse does not hold enough history for the requested cutoffs."""

    exit_code = ExitCode.HISTORY


class DatasetIntegrityError(ValueError):
    """A training-set file does not match the checksum recorded in its manifest."""

    exit_code = ExitCode.DATASET


@dataclass
class TrainingSets:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    manifest: dict = field(repr=False)

    @property
    def feature_names(self) -> list[str]:
        return list(self.manifest["feature_names"])

    def split(self, name: str) -> pd.DataFrame:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]


def choose_cutoffs(config: Config, as_of: dt.date) -> dict[str, list[dt.date]]:
    """Cutoffs per split: the latest is ``as_of - horizon_days`` so every label is fully observed."""
    ds = config.dataset
    latest = as_of - dt.timedelta(days=config.churn.horizon_days)
    cutoffs = sorted(latest - dt.timedelta(days=k * ds.cutoff_every_days) for k in range(ds.n_cutoffs))
    n_train = ds.n_cutoffs - ds.validation_cutoffs - ds.test_cutoffs
    return {
        "train": cutoffs[:n_train],
        "validation": cutoffs[n_train : n_train + ds.validation_cutoffs],
        "test": cutoffs[n_train + ds.validation_cutoffs :],
    }


def _check_history(warehouse, config: Config, earliest_cutoff: dt.date, as_of: dt.date) -> None:
    """The earliest cutoff needs ``required_history_days`` of orders before it; fail naming settings that fit."""
    first = warehouse.scalar(warehouse.render("SELECT MIN(ordered_at) FROM {orders}"))
    last = warehouse.scalar(warehouse.render("SELECT MAX(ordered_at) FROM {orders}"))
    ds, churn = config.dataset, config.churn
    required = churn.required_history_days
    needed = earliest_cutoff - dt.timedelta(days=required)
    what = "lookback days" if churn.population == "active" else "days of history (churn.min_history_days)"
    plan = (
        f"{ds.n_cutoffs} cutoffs every {ds.cutoff_every_days} days ending at {as_of} - "
        f"{churn.horizon_days} horizon days, first cutoff {earliest_cutoff}, with {required} {what}"
    )
    if first is None:
        raise InsufficientHistoryError(f"the warehouse holds no orders; {plan} need orders from {needed} to {as_of}")
    first_day = as_date(first)
    if first_day > needed:
        raise InsufficientHistoryError(
            f"not enough history: the earliest order is on {first_day}, but {plan} need orders from {needed}; "
            + history_suggestions(config, first_day, as_of)
        )
    last_day = as_date(last)
    if last_day < as_of - dt.timedelta(days=1):
        logger.warning(
            "the latest order is on %s, before as_of %s: labels of the latest cutoffs may be inflated "
            "(missing data reads as churn)",
            last_day,
            as_of,
        )


def history_suggestions(config: Config, first_day: dt.date, as_of: dt.date) -> str:
    """Settings (each alone, the rest unchanged) with which ``choose_cutoffs`` fits the history there is.

    The plan fits when ``(n_cutoffs - 1) * cutoff_every_days + required_history_days <= available``,
    ``available`` being the days from the earliest order to the latest cutoff (``as_of - horizon_days``).
    Each value is the largest that fits, so it keeps as much of the configured plan as possible.
    """
    ds, churn = config.dataset, config.churn
    available = (as_of - dt.timedelta(days=churn.horizon_days) - first_day).days
    spread = (ds.n_cutoffs - 1) * ds.cutoff_every_days
    required = churn.required_history_days
    fits: list[str] = []
    if churn.population == "active":
        if available - spread >= 1:
            fits.append(f"churn.lookback_days: {available - spread}")
        if available - spread >= churn.min_history_days:
            fits.append(
                f"churn.population: ever (every customer who has bought in the last {churn.ever_lookback_days} "
                f"days, given {churn.min_history_days} days of history before the first cutoff)"
            )
    elif available - spread >= 1:
        fits.append(f"churn.min_history_days: {available - spread}")
    minimum = ds.validation_cutoffs + ds.test_cutoffs + 1
    if available >= required:
        n_fit = (available - required) // ds.cutoff_every_days + 1
        if n_fit >= minimum:
            fits.append(f"dataset.n_cutoffs: {n_fit}")
        every_fit = (available - required) // (ds.n_cutoffs - 1)
        if every_fit >= 1:
            fits.append(f"dataset.cutoff_every_days: {every_fit}")
    history = f"the orders from {first_day} leave {available} days before the latest cutoff {as_of - dt.timedelta(days=churn.horizon_days)}"
    if not fits:
        return (
            f"{history}, too few for {minimum} cutoffs with any setting tried; load more history, use a later "
            "--as-of or a shorter churn.horizon_days"
        )
    return f"{history}; any one of these settings fits: " + "; ".join(fits)


def cap_train_rows(
    train: pd.DataFrame, cap: int | None, seed: int, setting: str = "training.max_train_examples"
) -> pd.DataFrame:
    """Keep the ``cap`` most recent rows: whole latest cutoffs, a seeded sample of the boundary one."""
    if cap is None or len(train) <= cap:
        return train
    order = np.random.default_rng(seed).permutation(len(train))
    shuffled = train.iloc[order]
    kept = shuffled.sort_values(CUTOFF_COLUMN, ascending=False, kind="stable").head(cap)
    logger.info(
        "%s=%d: kept %d of %d rows (most recent cutoffs first)",
        setting,
        cap,
        len(kept),
        len(train),
    )
    return kept.sort_values([CUTOFF_COLUMN, ID_COLUMN]).reset_index(drop=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _split_stats(frame: pd.DataFrame) -> dict:
    return {
        "rows": len(frame),
        "customers": int(frame[ID_COLUMN].nunique()),
        "churn_rate": float(frame[LABEL_COLUMN].mean()) if len(frame) else None,
    }


def build_training_sets(config: Config, as_of: dt.date) -> str:
    """Build, split by time and write the training sets for ``as_of``; returns the manifest path."""
    as_of = as_date(as_of)
    splits = choose_cutoffs(config, as_of)
    all_cutoffs = [c for name in SPLITS for c in splits[name]]
    with open_warehouse(config) as wh:
        _check_history(wh, config, all_cutoffs[0], as_of)
        frame = build_features(wh, config, all_cutoffs)
        dialect = wh.dialect
        sentiment = _sentiment_lineage(wh)
    frames = {name: frame[frame[CUTOFF_COLUMN].isin(splits[name])].reset_index(drop=True) for name in SPLITS}
    for name in SPLITS:
        if frames[name].empty:
            raise InsufficientHistoryError(
                f"the {name} split (cutoffs {', '.join(map(str, splits[name]))}) has no customers with a completed "
                f"order in the {config.churn.population_days} days before its cutoff"
            )

    out_root = config.resolve_path(config.dataset.output_dir)
    final = out_root / as_of.isoformat()
    tmp = out_root / f".{as_of.isoformat()}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        files = {}
        for name in SPLITS:
            path = tmp / f"{name}.parquet"
            frames[name].to_parquet(path, index=False)
            files[name] = {"path": path.name, "sha256": _sha256(path)}
        manifest = {
            "manifest_version": MANIFEST_VERSION,
            "as_of": as_of.isoformat(),
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "warehouse_dialect": dialect,
            "cutoffs": {name: [c.isoformat() for c in splits[name]] for name in SPLITS},
            "id_column": ID_COLUMN,
            "cutoff_column": CUTOFF_COLUMN,
            "feature_names": numeric_feature_names(config),
            "text_column": TEXT_COLUMN,
            "segment_columns": list(SEGMENT_COLUMNS),
            "label_column": LABEL_COLUMN,
            "churn_definition": {
                "lookback_days": config.churn.lookback_days,
                "horizon_days": config.churn.horizon_days,
                "population_kind": config.churn.population,
                "population_days": config.churn.population_days,
                "population": "customers with >= 1 completed order in [cutoff - population_days, cutoff)",
                "label": "churned = 1 when no completed order in [cutoff, cutoff + horizon_days) "
                "(cutoff = cutoff_date 00:00 UTC)",
                "features": "only rows with time < cutoff_date 00:00 UTC",
                "history_span_days": span_days(config),
            },
            "review_sentiment": sentiment,
            "dataset_config": config.dataset.model_dump(mode="json"),
            "max_train_examples": config.training.max_train_examples,
            "seed": config.training.seed,
            "splits": {name: {**_split_stats(frames[name]), **files[name]} for name in SPLITS},
        }
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
        _swap_into_place(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _log_summary(manifest)
    return str(final / MANIFEST_NAME)


def _sentiment_lineage(wh) -> dict:
    """Which sentiment head's values the ``sentiment_*`` features read (``review_sentiment.head_id``).

    The training job logs that head with the model, so scoring computes new reviews' sentiment with the
    head the model was trained on. None when the table holds no head's values (neutral features).
    """
    if not wh.table_exists("review_sentiment"):
        return {"head_id": None, "rows": 0}
    rows = wh.query_arrow(
        wh.render("SELECT head_id, COUNT(*) AS n FROM {review_sentiment} GROUP BY head_id ORDER BY n DESC")
    ).to_pylist()
    heads = {r["head_id"]: int(r["n"]) for r in rows if r["head_id"] is not None}
    if len(heads) > 1:
        logger.warning(
            "review_sentiment holds values of %d sentiment heads %s: the features mix them", len(heads), heads
        )
    return {"head_id": next(iter(heads), None), "rows": sum(int(r["n"]) for r in rows), "heads": heads}


def _swap_into_place(tmp: Path, final: Path) -> None:
    """Readers see the old complete directory or the new complete one, never a half-written one."""
    if final.exists():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def _log_summary(manifest: dict) -> None:
    lines = [f"training sets as of {manifest['as_of']}:", f"  {'split':<10} {'cutoffs':<24} {'rows':>9} {'churn':>7}"]
    for name in SPLITS:
        cut = manifest["cutoffs"][name]
        span = cut[0] if len(cut) == 1 else f"{cut[0]}..{cut[-1]}"
        stats = manifest["splits"][name]
        rate = "n/a" if stats["churn_rate"] is None else f"{stats['churn_rate']:.1%}"
        lines.append(f"  {name:<10} {span:<24} {stats['rows']:>9} {rate:>7}")
    logger.info("\n".join(lines))


def load_training_sets(manifest_path: str | os.PathLike) -> TrainingSets:
    """Read the three splits of a manifest, verifying each file's sha256."""
    manifest_path = Path(manifest_path)
    if manifest_path.is_dir():
        manifest_path = manifest_path / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    frames = {}
    for name in SPLITS:
        entry = manifest["splits"][name]
        if Path(str(entry["path"])).name != entry["path"]:  # a manifest names files beside it, nothing elsewhere
            raise DatasetIntegrityError(f"{manifest_path}: split {name} path {entry['path']!r} is not a file name")
        path = manifest_path.parent / entry["path"]
        if not path.is_file():
            raise DatasetIntegrityError(f"{path}: missing (listed in {manifest_path})")
        if _sha256(path) != entry["sha256"]:
            raise DatasetIntegrityError(f"{path}: sha256 differs from {manifest_path} (file changed after writing)")
        frame = pd.read_parquet(path)
        frame[CUTOFF_COLUMN] = pd.to_datetime(frame[CUTOFF_COLUMN]).dt.date
        frames[name] = frame
    return TrainingSets(frames["train"], frames["validation"], frames["test"], manifest)
