"""The Spark warehouse: URL parsing, contract check on the Parquet files, one-file partition replace."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.contract import CHURN_SCORES, ORDERS, RAW_TABLES
from pipelines.warehouse import SchemaMismatchError, WarehouseError, connect


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("spark+local://host/x", "spark\\+local:///FOLDER"),
        ("spark+connect:///x", "spark\\+local:///FOLDER"),
        ("spark+local:///x?memory=4g", "unknown Spark option"),
    ],
)
def test_bad_spark_urls_are_refused_before_spark_starts(url, message):
    with pytest.raises(WarehouseError, match=message):
        connect(url)


def _scores(day: dt.date, ids: list[int], probability: float) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "customer_id": ids,
            "score_date": [day] * n,
            "churn_probability": [probability] * n,
            "risk_tier": ["low"] * n,
            "model_name": ["churn-risk"] * n,
            "model_version": ["1"] * n,
            "scored_at": pa.array([dt.datetime(2025, 1, 2, tzinfo=dt.UTC)] * n, pa.timestamp("us", tz="UTC")),
            "run_id": ["r"] * n,
        }
    )


def test_partition_replace_contract_check_and_latest_view(tmp_path, spark_url):
    with connect(spark_url(tmp_path / "spark")) as wh:
        wh.init_schema()
        day1, day2 = dt.date(2025, 1, 1), dt.date(2025, 1, 2)
        wh.replace_partition(CHURN_SCORES, _scores(day1, [1, 2, 3], 0.1), "score_date", day1)
        wh.replace_partition(CHURN_SCORES, _scores(day2, [1, 2], 0.2), "score_date", day2)
        wh.replace_partition(CHURN_SCORES, _scores(day1, [4], 0.3), "score_date", day1)  # a rerun replaces the day
        rows = wh.query_df(
            wh.render(
                "SELECT score_date, COUNT(*) AS n, MAX(churn_probability) AS p FROM {churn_scores} "
                "GROUP BY score_date ORDER BY score_date"
            )
        )
        assert rows[["n", "p"]].values.tolist() == [[1, 0.3], [2, 0.2]]
        latest = wh.query_df(wh.render("SELECT customer_id, score_date FROM {churn_scores_latest} ORDER BY 1"))
        assert latest["score_date"].tolist() == [day2, day2, day1]
        files = sorted(p.name for p in wh.folder(CHURN_SCORES.name).iterdir())
        assert files == ["score_date=2025-01-01.parquet", "score_date=2025-01-02.parquet"]  # one file per day

        wh.check_contract([*RAW_TABLES, CHURN_SCORES])  # empty tables: the contract's own types
        bad = pa.table({"order_id": [1], "customer_id": ["x"], "ordered_at": [dt.date(2025, 1, 1)]})
        pq.write_table(bad, wh.folder(ORDERS.name) / "part-bad.parquet")
        with pytest.raises(SchemaMismatchError) as err:
            wh.check_contract([ORDERS])
        message = str(err.value)
        assert "orders.customer_id: type TEXT, expected BIGINT" in message
        assert "orders.ordered_at: type DATE, expected TIMESTAMPTZ" in message
        assert "orders.status: column missing" in message
