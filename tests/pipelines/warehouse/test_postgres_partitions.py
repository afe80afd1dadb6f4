"""PostgreSQL: churn_scores is list-partitioned by score_date and a partition replace swaps a whole partition."""

import datetime as dt
import logging
import threading

import pyarrow as pa
import pytest

from pipelines.contract import CHURN_SCORES, LATEST_SCORES_VIEW
from pipelines.warehouse import SchemaMismatchError, WarehouseError, connect, pgcopy, postgres_backend
from pipelines.warehouse.postgres_backend import partition_name

pytestmark = pytest.mark.postgres

D1, D2, D3 = dt.date(2025, 1, 1), dt.date(2025, 1, 2), dt.date(2025, 1, 3)


@pytest.fixture
def pg(postgres_url, postgres_schema):
    with connect(postgres_url, postgres_schema) as wh:
        wh.init_schema()
        yield wh


@pytest.fixture
def legacy_pg(postgres_url, postgres_schema, monkeypatch):
    """A schema whose churn_scores was made by hand as a plain table (not the contract's layout)."""
    with connect(postgres_url, postgres_schema) as wh:
        monkeypatch.setattr(wh, "_partitioning_clause", lambda table: "")
        wh.init_schema()
        monkeypatch.undo()
        yield wh


def _partitions(wh) -> dict[dt.date, tuple[str, int]]:
    """Attached partitions of churn_scores: day -> (name, oid)."""
    rows = wh.query_arrow(
        "SELECT c.relname, c.oid::bigint AS oid, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = CAST(:parent AS regclass)",
        {"parent": wh.qualified("churn_scores")},
    ).to_pylist()
    return {dt.date.fromisoformat(r["bound"].split("'")[1]): (r["relname"], r["oid"]) for r in rows}


def _tables(wh) -> set[str]:
    rows = wh.query_arrow("SELECT tablename FROM pg_tables WHERE schemaname = :s", {"s": wh.schema})
    return set(rows.column(0).to_pylist())


def _relkind(wh, table="churn_scores") -> str:
    return wh.scalar(
        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :s AND c.relname = :t",
        {"s": wh.schema, "t": table},
    )


def _count(wh, day) -> int:
    return wh.row_count("churn_scores", "score_date = :d", {"d": day})


def test_churn_scores_is_list_partitioned_by_score_date_with_key_on_parent(pg):
    assert _relkind(pg) == "p"
    key = pg.query_arrow(
        "SELECT pt.partstrat, a.attname FROM pg_partitioned_table pt JOIN pg_attribute a "
        "ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0] WHERE pt.partrelid = CAST(:t AS regclass)",
        {"t": pg.qualified("churn_scores")},
    ).to_pylist()
    assert key == [{"partstrat": "l", "attname": "score_date"}]
    pk = pg.scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) AND contype = 'p'",
        {"t": pg.qualified("churn_scores")},
    )
    assert pk == "PRIMARY KEY (score_date, customer_id)"
    # the small monitoring outputs stay plain tables
    assert _relkind(pg, "monitoring_drift") == "r"
    assert _relkind(pg, "monitoring_performance") == "r"


def test_replace_swaps_the_day_and_leaves_other_days_alone(pg, scores, caplog):
    pg.replace_partition(CHURN_SCORES, scores(D1, range(10)), "score_date", D1)
    pg.replace_partition(CHURN_SCORES, scores(D2, range(5), prob=0.2), "score_date", D2)
    before = _partitions(pg)
    assert before[D1][0] == partition_name("churn_scores", D1) == "churn_scores__p20250101"
    with caplog.at_level(logging.INFO, logger="pipelines.warehouse.base"):
        pg.replace_partition(CHURN_SCORES, scores(D1, range(8), prob=0.9), "score_date", D1)  # rerun
    assert "partition swap" in caplog.text
    after = _partitions(pg)
    assert set(after) == {D1, D2}
    assert after[D1][1] != before[D1][1]  # a new table was swapped in for the day...
    assert after[D2] == before[D2]  # ...and the other day's partition was not touched
    assert _count(pg, D1) == 8 and _count(pg, D2) == 5
    assert pg.scalar(
        pg.render("SELECT MIN(churn_probability) FROM {churn_scores} WHERE score_date = :d"), {"d": D1}
    ) == pytest.approx(0.9)
    assert pg.scalar(
        pg.render("SELECT MAX(churn_probability) FROM {churn_scores} WHERE score_date = :d"), {"d": D2}
    ) == pytest.approx(0.2)
    assert _tables(pg) >= {"churn_scores__p20250101", "churn_scores__p20250102"}
    assert not [t for t in _tables(pg) if "__load" in t]  # no staging table left
    # the swapped-in partition carries the key (it was built after the load) and not the staging CHECK
    with pytest.raises(WarehouseError, match="duplicate key"):
        pg.execute(
            pg.render("INSERT INTO {churn_scores} SELECT * FROM {churn_scores} WHERE score_date = :d LIMIT 1"),
            {"d": D1},
        )
    checks = pg.scalar(
        "SELECT COUNT(*) FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) AND contype = 'c'",
        {"t": pg.qualified("churn_scores__p20250101")},
    )
    assert checks == 0


def test_latest_view_returns_each_customers_newest_day(pg, scores):
    pg.replace_partition(CHURN_SCORES, scores(D2, range(5), prob=0.2), "score_date", D2)
    pg.replace_partition(CHURN_SCORES, scores(D1, range(10), prob=0.1), "score_date", D1)
    latest = pg.query_df(pg.render("SELECT customer_id, score_date FROM {churn_scores_latest} ORDER BY customer_id"))
    assert list(latest.customer_id) == list(range(10))
    assert set(latest[latest.customer_id < 5].score_date.astype(str)) == {"2025-01-02"}
    assert set(latest[latest.customer_id >= 5].score_date.astype(str)) == {"2025-01-01"}
    assert pg.row_count(LATEST_SCORES_VIEW) == 10


def test_failure_during_copy_keeps_the_old_partition(pg, scores, monkeypatch):
    pg.replace_partition(CHURN_SCORES, scores(D1, range(10)), "score_date", D1)
    old = _partitions(pg)
    encode = pgcopy.encode_rows
    calls = []

    def failing_encode(table):
        calls.append(table.num_rows)
        if len(calls) == 2:
            raise RuntimeError("encoder crashed (injected)")
        return encode(table)

    monkeypatch.setattr(postgres_backend, "COPY_BATCH_ROWS", 3)  # several batches: fail midway through the COPY
    monkeypatch.setattr(pgcopy, "encode_rows", failing_encode)
    with pytest.raises(RuntimeError, match="injected"):
        pg.replace_partition(CHURN_SCORES, scores(D1, range(9), prob=0.1), "score_date", D1)
    monkeypatch.undo()
    assert len(calls) >= 2
    assert _partitions(pg) == old
    assert _count(pg, D1) == 10
    assert pg.scalar(pg.render("SELECT MAX(churn_probability) FROM {churn_scores}")) == pytest.approx(0.5)
    assert not [t for t in _tables(pg) if "__load" in t]


def test_duplicate_keys_fail_at_the_key_build_and_the_staging_table_is_dropped(pg, scores):
    pg.replace_partition(CHURN_SCORES, scores(D1, range(10)), "score_date", D1)
    old = _partitions(pg)
    with pytest.raises(WarehouseError, match="duplicate|unique"):
        pg.replace_partition(CHURN_SCORES, scores(D1, [1, 2, 2], prob=0.1), "score_date", D1)
    assert _partitions(pg) == old
    assert _count(pg, D1) == 10
    assert not [t for t in _tables(pg) if "__load" in t]  # it had been committed before the key build


def test_failure_inside_the_swap_rolls_the_whole_swap_back(pg, scores):
    pg.replace_partition(CHURN_SCORES, scores(D1, range(10)), "score_date", D1)
    old = _partitions(pg)
    # something outside the platform depends on the old partition: its DROP fails inside the swap transaction
    pg.execute(f"CREATE VIEW {pg.qualified('pinned')} AS SELECT * FROM {pg.qualified(old[D1][0])}")
    with pytest.raises(WarehouseError, match="depend"):
        pg.replace_partition(CHURN_SCORES, scores(D1, range(4), prob=0.1), "score_date", D1)
    assert _partitions(pg) == old  # still attached: the detach was rolled back with the rest
    assert _count(pg, D1) == 10
    assert not [t for t in _tables(pg) if "__load" in t]


def test_staging_table_left_by_a_killed_run_of_an_older_version_is_swept(pg, scores):
    pg.replace_partition(CHURN_SCORES, scores(D1, range(10)), "score_date", D1)
    pg.execute(f"CREATE TABLE {pg.qualified('churn_scores__load20250101')} (junk int)")  # the old naming
    pg.replace_partition(CHURN_SCORES, scores(D1, range(3)), "score_date", D1)
    assert _count(pg, D1) == 3
    assert "churn_scores__load20250101" not in _tables(pg)


def test_concurrent_replaces_of_one_day_queue_instead_of_clashing(pg, scores, postgres_url):
    data = [scores(D1, range(20_000), prob=p) for p in (0.25, 0.75)]
    errors = []

    def write(frame):
        try:
            with connect(postgres_url, pg.schema) as wh:
                wh.replace_partition(CHURN_SCORES, frame, "score_date", D1)
        except Exception as exc:  # collected: asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(frame,)) for frame in data]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _count(pg, D1) == 20_000
    assert pg.scalar(pg.render("SELECT COUNT(DISTINCT churn_probability) FROM {churn_scores}")) == 1


def test_replace_inside_a_callers_transaction_commits_or_rolls_back_with_it(pg, scores):
    pg.replace_partition(CHURN_SCORES, scores(D1, range(10)), "score_date", D1)
    with pytest.raises(RuntimeError, match="later step"), pg.transaction():
        pg.replace_partition(CHURN_SCORES, scores(D1, range(2)), "score_date", D1)
        pg.replace_partition(CHURN_SCORES, scores(D3, range(4)), "score_date", D3)
        raise RuntimeError("a later step failed")
    assert _count(pg, D1) == 10 and _count(pg, D3) == 0
    assert set(_partitions(pg)) == {D1}
    with pg.transaction():
        pg.replace_partition(CHURN_SCORES, scores(D3, range(4)), "score_date", D3)
    assert _count(pg, D3) == 4
    assert _partitions(pg)[D3][0] == "churn_scores__p20250103"


def test_binary_copy_roundtrips_every_contract_type_and_nulls(pg):
    values = {
        "a": pa.array([1, None, -5, 2**62], pa.int64()),
        "b": pa.array([1, 2, None, -(2**31)], pa.int32()),
        "c": pa.array([0.5, None, float("inf"), -1e300], pa.float64()),
        "d": pa.array(["x", None, "", "h\u00e9 'q\" ,\n\\"], pa.string()),
        "e": pa.array([dt.date(2026, 1, 1), dt.date(1999, 12, 31), None, dt.date(1, 1, 1)], pa.date32()),
        "f": pa.array(
            [
                dt.datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=dt.UTC),
                None,
                dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
                dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
            ],
            pa.timestamp("us", tz="UTC"),
        ),
        "g": pa.array([True, False, None, True]),
    }
    pg.execute(
        f"CREATE TABLE {pg.qualified('roundtrip')} (i integer, a bigint, b integer, c double precision, "
        "d text, e date, f timestamptz, g boolean)"
    )
    table = pa.table({"i": pa.array(range(4), pa.int32()), **values})
    pg._load_arrow("roundtrip", table)
    got = pg.query_arrow(f"SELECT * FROM {pg.qualified('roundtrip')} ORDER BY i")
    for name, expected in values.items():
        assert got.column(name).to_pylist() == expected.to_pylist(), name


def test_an_unpartitioned_scores_table_is_refused_naming_the_fix(legacy_pg, scores):
    """v0.1 keeps no migration of hand-made layouts: the day is never written into a table the swap cannot serve."""
    assert _relkind(legacy_pg) == "r"
    with pytest.raises(SchemaMismatchError, match=r"not partitioned by score_date.*churn init-warehouse"):
        legacy_pg.replace_partition(CHURN_SCORES, scores(D1, range(3)), "score_date", D1)
    assert legacy_pg.row_count("churn_scores") == 0


def test_numeric_columns_read_as_float_even_when_they_start_with_nulls(pg):
    """Only NUMERIC columns are converted (decided by their first non-null value); the others keep their type."""
    table = pg.query_arrow(
        "SELECT n, i, t FROM (VALUES (NULL::numeric, 1::bigint, 'a'), (1.25::numeric, NULL, NULL), "
        "(NULL, 3, 'c')) v(n, i, t)"
    )
    assert table.schema.types == [pa.float64(), pa.int64(), pa.string()]
    assert table.to_pydict() == {"n": [None, 1.25, None], "i": [1, None, 3], "t": ["a", None, "c"]}
    empty = pg.query_arrow("SELECT 1.5::numeric AS n WHERE false")
    assert empty.num_rows == 0 and empty.column_names == ["n"]
