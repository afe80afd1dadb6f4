"""Time-split training sets: cutoffs, splits, manifest, atomic writes, clear errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.datasets import (
    DatasetIntegrityError,
    InsufficientHistoryError,
    build_training_sets,
    cap_train_rows,
    choose_cutoffs,
    load_training_sets,
)
from pipelines.features import LABEL_COLUMN, SEGMENT_COLUMNS, TEXT_COLUMN, feature_columns, numeric_feature_names
from pipelines.warehouse import connect

AS_OF = dt.date(2025, 12, 31)
START = dt.date(2024, 1, 1)


def _history(n_customers: int = 40, seed: int = 0, start: dt.date = START) -> dict[str, pd.DataFrame]:
    """Customers ordering every few weeks until a random stop day (so some churn, some do not)."""
    rng = np.random.default_rng(seed)
    span = (AS_OF - start).days
    orders, items = [], []
    for cid in range(1, n_customers + 1):
        stop = int(rng.integers(span // 3, span + 120))
        day = int(rng.integers(0, 60))
        while day < min(stop, span):
            oid = len(orders) + 1
            at = pd.Timestamp(start, tz="UTC") + pd.Timedelta(days=day, hours=int(rng.integers(0, 24)))
            status = str(rng.choice(["completed", "completed", "completed", "returned", "cancelled"]))
            orders.append(
                {
                    "order_id": oid,
                    "customer_id": cid,
                    "ordered_at": at,
                    "status": status,
                    "total_amount": round(float(rng.uniform(5, 200)), 2),
                }
            )
            items.append(
                {
                    "order_id": oid,
                    "line_number": 1,
                    "category": str(rng.choice(["books", "toys", "shoes"])),
                    "quantity": 1,
                    "unit_price": 1.0,
                }
            )
            day += int(rng.integers(7, 50))
    customers = pd.DataFrame(
        {
            "customer_id": range(1, n_customers + 1),
            "signup_at": pd.Timestamp(start, tz="UTC") - pd.Timedelta(days=10),
            "country": "DE",
            "acquisition_channel": "organic",
        }
    )
    return {"customers": customers, "orders": pd.DataFrame(orders), "order_items": pd.DataFrame(items)}


def _load(url: str, schema: str | None, data: dict[str, pd.DataFrame]) -> None:
    with connect(url, schema) as wh:
        wh.init_schema()
        for table, frame in data.items():
            wh.bulk_load(table, frame)


@pytest.fixture
def small_config(config):
    return config.with_overrides({"dataset": {"n_cutoffs": 4, "cutoff_every_days": 30}})


@pytest.fixture
def loaded_config(small_config, tmp_path):
    _load(f"duckdb:///{tmp_path}/warehouse.duckdb", None, _history())
    return small_config


def test_cutoffs_are_spaced_and_fully_observed(small_config):
    splits = choose_cutoffs(small_config, AS_OF)
    assert splits == {
        "train": [dt.date(2025, 7, 4), dt.date(2025, 8, 3)],
        "validation": [dt.date(2025, 9, 2)],
        "test": [dt.date(2025, 10, 2)],
    }
    assert splits["test"][-1] + dt.timedelta(days=small_config.churn.horizon_days) == AS_OF


def test_build_splits_by_time_and_writes_manifest(loaded_config):
    path = build_training_sets(loaded_config, AS_OF)
    assert path.endswith("2025-12-31/manifest.json") and Path(path).exists()
    sets = load_training_sets(path)
    manifest = sets.manifest

    cut = {name: sorted(set(sets.split(name)["cutoff_date"])) for name in ("train", "validation", "test")}
    assert max(cut["train"]) < min(cut["validation"]) and max(cut["validation"]) < min(cut["test"])
    assert max(cut["test"]) + dt.timedelta(days=loaded_config.churn.horizon_days) <= AS_OF
    assert manifest["cutoffs"]["test"] == ["2025-10-02"]
    assert sets.feature_names == numeric_feature_names(loaded_config) == manifest["feature_names"]
    assert (manifest["text_column"], manifest["label_column"]) == (TEXT_COLUMN, LABEL_COLUMN)
    assert manifest["segment_columns"] == list(SEGMENT_COLUMNS)
    assert manifest["churn_definition"]["horizon_days"] == 90
    for name in ("train", "validation", "test"):
        frame = sets.split(name)
        assert list(frame.columns) == feature_columns(loaded_config, labels=True)
        stats = manifest["splits"][name]
        assert stats["rows"] == len(frame) > 0
        assert stats["churn_rate"] == pytest.approx(frame[LABEL_COLUMN].mean())
        assert len(stats["sha256"]) == 64
        assert isinstance(frame["cutoff_date"].iloc[0], dt.date)
    assert 0 < manifest["splits"]["train"]["churn_rate"] < 1
    # no temp or backup directories left behind; a rebuild replaces the directory
    build_training_sets(loaded_config, AS_OF)
    assert [p.name for p in Path(path).parent.parent.iterdir()] == ["2025-12-31"]


def test_max_train_examples_keeps_recent_rows_deterministically(loaded_config):
    """The stored train split keeps every row (LightGBM uses them all); the cap picks the transformer's rows."""
    uncapped = load_training_sets(build_training_sets(loaded_config, AS_OF))
    full = uncapped.train
    latest = full[full["cutoff_date"] == full["cutoff_date"].max()]
    cap = len(latest) + 3
    capped_config = loaded_config.with_overrides({"training": {"max_train_examples": cap}})
    stored = load_training_sets(build_training_sets(capped_config, AS_OF))
    pd.testing.assert_frame_equal(stored.train, full)
    first, second = (cap_train_rows(stored.train, cap, capped_config.training.seed) for _ in range(2))
    assert len(first) == cap
    assert (first["cutoff_date"] == latest["cutoff_date"].iloc[0]).sum() == len(latest)  # whole latest cutoff
    pd.testing.assert_frame_equal(first, second)


def test_too_little_history_fails_clearly(small_config, tmp_path):
    _load(f"duckdb:///{tmp_path}/warehouse.duckdb", None, _history(start=dt.date(2025, 1, 1)))
    with pytest.raises(InsufficientHistoryError) as info:
        build_training_sets(small_config, AS_OF)
    message = str(info.value)
    assert "earliest order is on 2025-01" in message and "need orders from 2024-07-04" in message
    assert not (Path(small_config.dataset.output_dir) / "2025-12-31").exists()


def _suggested_overrides(message: str) -> list[dict]:
    """'any one of these settings fits: churn.lookback_days: 155; dataset.n_cutoffs: 4' -> override dicts."""
    listed = message.split("any one of these settings fits: ", 1)[1]
    out = []
    for item in listed.split("; "):
        key, value = item.split(": ", 1)
        section, name = key.split(".")
        token = value.split(" ", 1)[0]
        out.append({section: {name: int(token) if token.isdigit() else token}})
    return out


def test_eighteen_months_of_purchases_name_settings_that_work(config, tmp_path):
    """A purchase-only log of 18 months fails on the defaults; every setting the error names then builds."""
    _load(f"duckdb:///{tmp_path}/warehouse.duckdb", None, _history(start=dt.date(2024, 7, 1)))
    with pytest.raises(InsufficientHistoryError) as info:
        build_training_sets(config, AS_OF)
    message = str(info.value)
    overrides = _suggested_overrides(message)
    keys = {f"{section}.{name}" for o in overrides for section, inner in o.items() for name in inner}
    assert keys == {"churn.lookback_days", "churn.population", "dataset.n_cutoffs", "dataset.cutoff_every_days"}
    # 2024-07-01 .. 2025-10-02 (latest cutoff) = 458 days; 7 gaps of 30 days leave 248 days of lookback
    assert "churn.lookback_days: 248" in message and "dataset.n_cutoffs: 4" in message
    assert "dataset.cutoff_every_days: 13" in message and "churn.population: ever" in message
    for override in overrides:
        sets = load_training_sets(build_training_sets(config.with_overrides(override), AS_OF))
        assert all(len(sets.split(name)) > 0 for name in ("train", "validation", "test")), override


def test_population_ever_keeps_lapsed_buyers(config, tmp_path):
    """population ever: a customer whose only order is 500 days old is in it; active (365 days) drops them."""
    data = _history(start=dt.date(2024, 1, 1))
    lapsed = (
        data["orders"]
        .iloc[:1]
        .assign(order_id=10**6, customer_id=999, ordered_at=pd.Timestamp("2024-03-01", tz="UTC"), status="completed")
    )
    data["orders"] = pd.concat([data["orders"], lapsed], ignore_index=True)
    data["customers"] = pd.concat(
        [data["customers"], data["customers"].iloc[:1].assign(customer_id=999)], ignore_index=True
    )
    _load(f"duckdb:///{tmp_path}/warehouse.duckdb", None, data)
    base = {"dataset": {"n_cutoffs": 3}}
    ever = load_training_sets(
        build_training_sets(config.with_overrides({**base, "churn": {"population": "ever"}}), AS_OF)
    )
    assert 999 in set(ever.test["customer_id"]) and ever.manifest["churn_definition"]["population_days"] == 730
    assert ever.test.loc[ever.test["customer_id"] == 999, LABEL_COLUMN].item() == 1
    active = load_training_sets(build_training_sets(config.with_overrides(base), AS_OF))
    assert 999 not in set(active.test["customer_id"])
    assert set(active.test["customer_id"]) < set(ever.test["customer_id"])


def test_too_little_history_for_any_setting_says_so(config, tmp_path):
    _load(f"duckdb:///{tmp_path}/warehouse.duckdb", None, _history(start=dt.date(2025, 8, 1)))
    with pytest.raises(InsufficientHistoryError, match="too few for 3 cutoffs with any setting tried"):
        build_training_sets(config.with_overrides({"churn": {"population": "ever"}}), AS_OF)


def test_empty_warehouse_fails_clearly(small_config, tmp_path):
    _load(f"duckdb:///{tmp_path}/warehouse.duckdb", None, {})
    with pytest.raises(InsufficientHistoryError, match="no orders"):
        build_training_sets(small_config, AS_OF)


def test_tampered_file_is_detected(loaded_config):
    path = Path(build_training_sets(loaded_config, AS_OF))
    frame = pd.read_parquet(path.parent / "test.parquet")
    frame.head(1).to_parquet(path.parent / "test.parquet", index=False)
    with pytest.raises(DatasetIntegrityError, match="sha256"):
        load_training_sets(path)


def test_manifest_paths_outside_its_directory_or_missing_files_are_refused(loaded_config):
    path = Path(build_training_sets(loaded_config, AS_OF))
    manifest = json.loads(path.read_text())
    manifest["splits"]["test"]["path"] = "../../elsewhere.parquet"
    path.write_text(json.dumps(manifest))
    with pytest.raises(DatasetIntegrityError, match="'../../elsewhere.parquet' is not a file name"):
        load_training_sets(path)
    manifest["splits"]["test"]["path"] = "gone.parquet"
    path.write_text(json.dumps(manifest))
    with pytest.raises(DatasetIntegrityError, match="gone.parquet: missing"):
        load_training_sets(path)


def test_build_on_each_backend(backend_config, warehouse_url_and_schema):
    url, schema = warehouse_url_and_schema
    config = backend_config.with_overrides({"dataset": {"n_cutoffs": 3}})
    _load(url, schema, _history(n_customers=15))
    manifest = json.loads(Path(build_training_sets(config, AS_OF)).read_text())
    assert manifest["cutoffs"] == {"train": ["2025-08-03"], "validation": ["2025-09-02"], "test": ["2025-10-02"]}
    assert manifest["warehouse_dialect"] in ("duckdb", "postgresql")
    assert all(manifest["splits"][s]["rows"] > 0 for s in ("train", "validation", "test"))


def test_cli_build_and_show(loaded_config, tmp_path, capsys):
    import yaml

    from pipelines.cli.main import main

    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(loaded_config.model_dump(mode="json")))
    assert main(["--config", str(config_path), "build-training-sets", "--as-of", "2025-12-31"]) == 0
    assert capsys.readouterr().out.strip().endswith("2025-12-31/manifest.json")
    sets = load_training_sets(Path(loaded_config.dataset.output_dir) / "2025-12-31" / "manifest.json")
    customer = int(sets.test["customer_id"].iloc[0])
    assert (
        main(["--config", str(config_path), "show-features", "--customer", str(customer), "--as-of", "2025-10-02"]) == 0
    )
    out = capsys.readouterr().out
    assert "days_since_last_order" in out and "text view (most recent first):" in out and "d ago] order" in out
    assert main(["--config", str(config_path), "show-features", "--customer", "99999", "--as-of", "2025-10-02"]) == 1
