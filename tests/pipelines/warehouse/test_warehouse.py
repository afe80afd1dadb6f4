"""Warehouse layer on DuckDB and PostgreSQL: schema, bulk load, streaming, atomic partition replace."""

import datetime as dt

import pandas as pd
import pytest

from pipelines.contract import CHURN_SCORES, LATEST_SCORES_VIEW, Column, Table
from pipelines.warehouse import WarehouseError, connect
from pipelines.warehouse.arrow import ContractError
from pipelines.warehouse.base import translate_params
from pipelines.warehouse.postgres_backend import _derived_name, _parse_staging, partition_name, staging_name

UTC = dt.UTC


def test_init_is_idempotent_and_creates_contract_tables(warehouse):
    warehouse.init_schema()  # second time: no error
    for name in (
        "customers",
        "orders",
        "order_items",
        "events",
        "reviews",
        "products",
        "churn_scores",
        "monitoring_drift",
        "monitoring_performance",
    ):
        assert warehouse.table_exists(name), name
    assert warehouse.row_count(LATEST_SCORES_VIEW) == 0


def test_bulk_load_and_stream_in_chunks(warehouse):
    n = 2_500
    warehouse.bulk_load(
        "customers",
        pd.DataFrame(
            {
                "customer_id": range(n),
                "signup_at": pd.Timestamp("2024-01-01", tz="UTC"),
                "country": "DE",
                "acquisition_channel": "organic",
            }
        ),
    )
    assert warehouse.row_count("customers") == n
    chunks = list(
        warehouse.iter_df(warehouse.render("SELECT customer_id FROM {customers} ORDER BY 1"), chunk_rows=1000)
    )
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    # nullable columns absent from the frame are loaded as NULL
    assert warehouse.scalar(warehouse.render("SELECT COUNT(*) FROM {customers} WHERE birth_year IS NULL")) == n


def test_timestamps_roundtrip_in_utc(warehouse):
    ts = pd.Timestamp("2024-03-31 23:30:00", tz="Europe/Berlin")
    warehouse.bulk_load(
        "customers",
        pd.DataFrame({"customer_id": [1], "signup_at": [ts], "country": ["DE"], "acquisition_channel": ["x"]}),
    )
    got = warehouse.query_df(warehouse.render("SELECT signup_at FROM {customers}"))["signup_at"].iloc[0]
    assert pd.Timestamp(got) == ts  # same instant
    assert str(pd.Timestamp(got).tz) in ("UTC", "utc", "Etc/UTC")


def test_bound_parameters_not_interpolated(warehouse):
    warehouse.bulk_load(
        "customers",
        pd.DataFrame(
            {
                "customer_id": [1],
                "signup_at": [pd.Timestamp("2024-01-01", tz="UTC")],
                "country": ["x' OR '1'='1"],
                "acquisition_channel": ["%s"],
            }
        ),
    )
    sql = warehouse.render("SELECT COUNT(*) FROM {customers} WHERE country = :c AND acquisition_channel = :a")
    assert warehouse.scalar(sql, {"c": "x' OR '1'='1", "a": "%s"}) == 1
    assert warehouse.scalar(sql, {"c": "x", "a": "%s"}) == 0


def test_replace_partition_replaces_and_never_duplicates(warehouse, scores):
    d1, d2 = dt.date(2025, 1, 1), dt.date(2025, 1, 2)
    warehouse.replace_partition(CHURN_SCORES, scores(d1, range(10)), "score_date", d1)
    warehouse.replace_partition(CHURN_SCORES, scores(d2, range(5)), "score_date", d2)
    warehouse.replace_partition(CHURN_SCORES, scores(d1, range(8), prob=0.9), "score_date", d1)  # rerun
    assert warehouse.row_count("churn_scores", "score_date = :d", {"d": d1}) == 8
    assert warehouse.row_count("churn_scores", "score_date = :d", {"d": d2}) == 5
    assert warehouse.scalar(
        warehouse.render("SELECT MIN(churn_probability) FROM {churn_scores} WHERE score_date = :d"), {"d": d1}
    ) == pytest.approx(0.9)
    latest = warehouse.query_df(warehouse.render("SELECT * FROM {churn_scores_latest} ORDER BY customer_id"))
    assert len(latest) == 8  # customers 0-7 (d1 rerun) and 0-4 (d2)
    assert set(latest[latest.customer_id < 5].score_date.astype(str)) == {"2025-01-02"}


def test_replace_partition_failure_midway_keeps_old_rows(warehouse, monkeypatch, scores):
    d1 = dt.date(2025, 1, 1)
    warehouse.replace_partition(CHURN_SCORES, scores(d1, range(10)), "score_date", d1)

    def broken_load(table, data, **options):
        raise WarehouseError("disk full (injected)")

    monkeypatch.setattr(warehouse, "_load_arrow", broken_load)
    with pytest.raises(WarehouseError, match="injected"):
        warehouse.replace_partition(CHURN_SCORES, scores(d1, range(3), prob=0.1), "score_date", d1)
    monkeypatch.undo()
    assert warehouse.row_count("churn_scores") == 10  # the delete was rolled back
    assert warehouse.scalar(warehouse.render("SELECT MAX(churn_probability) FROM {churn_scores}")) == pytest.approx(0.5)


def test_replace_partition_rejects_rows_of_other_partitions(warehouse, scores):
    d1, d2 = dt.date(2025, 1, 1), dt.date(2025, 1, 2)
    with pytest.raises(WarehouseError, match="other score_date"):
        warehouse.replace_partition(CHURN_SCORES, scores(d2, range(3)), "score_date", d1)


def test_contract_errors_name_table_and_column(warehouse):
    with pytest.raises(ContractError, match=r"customers\.country: required column is missing"):
        warehouse.bulk_load(
            "customers",
            pd.DataFrame(
                {"customer_id": [1], "signup_at": [pd.Timestamp("2024-01-01", tz="UTC")], "acquisition_channel": ["x"]}
            ),
        )
    with pytest.raises(ContractError, match=r"customers\.signup_at: timestamps must be timezone-aware"):
        warehouse.bulk_load(
            "customers",
            pd.DataFrame(
                {
                    "customer_id": [1],
                    "signup_at": [pd.Timestamp("2024-01-01")],
                    "country": ["DE"],
                    "acquisition_channel": ["x"],
                }
            ),
        )
    assert warehouse.row_count("customers") == 0


def test_bad_schema_name_is_refused(tmp_path):
    from pipelines.config import ConfigError

    with pytest.raises(ConfigError):
        connect(f"duckdb:///{tmp_path}/x.duckdb", 'main"; DROP TABLE x; --')


def test_unsupported_dialect_is_a_clear_error():
    with pytest.raises(WarehouseError, match="not supported"):
        connect("mysql://u@h/db")


def test_param_translation_keeps_casts():
    sql = "SELECT :a::DATE, x FROM t WHERE y = :b AND s LIKE '10%'"
    assert translate_params(sql, "duckdb") == "SELECT $a::DATE, x FROM t WHERE y = $b AND s LIKE '10%'"
    assert translate_params(sql, "psycopg") == "SELECT %(a)s::DATE, x FROM t WHERE y = %(b)s AND s LIKE '10%%'"


def test_drop_schema_then_init_resets_data(warehouse):
    """`churn init-warehouse --reset`: on DuckDB the default schema `main` is emptied, not dropped."""
    warehouse.bulk_load(
        "customers",
        pd.DataFrame(
            {
                "customer_id": [1],
                "signup_at": [pd.Timestamp("2024-01-01", tz="UTC")],
                "country": ["DE"],
                "acquisition_channel": ["x"],
            }
        ),
    )
    warehouse.drop_schema()
    assert not warehouse.table_exists("customers")
    warehouse.init_schema()
    assert warehouse.row_count("customers") == 0


def test_duckdb_memory_limit_is_applied_and_validated(tmp_path):
    with connect(f"duckdb:///{tmp_path}/m.duckdb", duckdb_memory_limit="512MB") as wh:
        limit = wh.scalar("SELECT current_setting('memory_limit')")
        assert limit.replace(" ", "").upper().startswith(("488.2MIB", "512MB", "488MIB"))
    with pytest.raises(WarehouseError, match="memory limit"):
        connect(f"duckdb:///{tmp_path}/m2.duckdb", duckdb_memory_limit="1GB'; DROP TABLE x; --")


def test_derived_names_stay_valid_identifiers_within_63_characters():
    long_a, long_b = "t" * 60 + "a", "t" * 60 + "b"
    d1, d2 = dt.date(2025, 1, 1), dt.date(2025, 1, 2)
    created = 1_767_225_600  # 2026-01-01 00:00 UTC
    names = {partition_name(long_a, d1), partition_name(long_b, d1), staging_name(long_a, d1, created, "abc123")}
    assert len(names) == 3 and all(len(n) <= 63 for n in names)
    assert _derived_name(partition_name(long_a, d1), "_pkey") != partition_name(long_a, d1)
    assert partition_name("churn_scores", d2) == "churn_scores__p20250102"
    assert staging_name("churn_scores", d2, created, "abc123") == "churn_scores__load20250102_6955b900_abc123"
    # the sweep reads day and creation time back from the name, also for a long (hashed) table name
    assert _parse_staging(long_a, staging_name(long_a, d1, created, "abc123")) == (d1, created)
    assert _parse_staging(long_b, staging_name(long_a, d1, created, "abc123")) is None
    assert _parse_staging("churn_scores", "churn_scores__load20250102") == (d2, None)  # an older version's


def test_contract_refuses_native_partitions_without_a_date_key():
    cols = (Column("k", "bigint"), Column("day", "date"), Column("tag", "text"))
    with pytest.raises(ValueError, match="primary key"):
        Table("x", "", cols, primary_key=("k",), partition_column="day", native_partitions=True)
    with pytest.raises(ValueError, match="not a date"):
        Table("x", "", cols, primary_key=("k", "tag"), partition_column="tag", native_partitions=True)
    assert Table("x", "", cols, primary_key=("k", "day"), partition_column="day", native_partitions=True)
