"""The canonical SQL's Spark rewrites: each rule, string literals left alone, unknown constructs refused (no Spark)."""

from __future__ import annotations

import pytest

from pipelines.config import Config
from pipelines.features.sql import btyd_summary_sql, feature_sql
from pipelines.features.sql_common import day_number, seconds_between
from pipelines.warehouse.spark_sql import SparkTranslationError, to_spark_sql


@pytest.mark.parametrize(
    ("canonical", "spark"),
    [
        (
            day_number("o.ordered_at"),
            "CAST(FLOOR((CAST(unix_micros(o.ordered_at) AS DOUBLE) / 1E6) / 86400) AS INTEGER)",
        ),
        (
            seconds_between("p.cutoff_ts", "cu.signup_at"),
            "(CAST(unix_micros(p.cutoff_ts) - unix_micros(cu.signup_at) AS DOUBLE) / 1E6)",
        ),
        ("CAST(x AS DOUBLE PRECISION) / 2", "CAST(x AS DOUBLE) / 2"),
        ("CAST(n AS TEXT) || 'd'", "CAST(n AS STRING) || 'd'"),
        ("CAST(:scan_start AS TIMESTAMPTZ)", "CAST(:scan_start AS TIMESTAMP)"),
        # already Spark SQL: FILTER, WITHIN GROUP, CHR, LEFT, CONCAT_WS, bound parameters
        (
            "COUNT(*) FILTER (WHERE age <= :w), CONCAT_WS(', ', LEFT(REPLACE(t, CHR(10), ' '), 3))",
            "COUNT(*) FILTER (WHERE age <= :w), CONCAT_WS(', ', LEFT(REPLACE(t, CHR(10), ' '), 3))",
        ),
    ],
)
def test_each_rewrite(canonical, spark):
    assert to_spark_sql(canonical) == spark


def test_string_literals_are_never_rewritten():
    sql = "SELECT 'CAST(x AS TEXT)' || CAST(n AS TEXT) AS s, 'it''s AS TEXT)' AS t"
    assert to_spark_sql(sql) == "SELECT 'CAST(x AS TEXT)' || CAST(n AS STRING) AS s, 'it''s AS TEXT)' AS t"


@pytest.mark.parametrize(
    ("sql", "what"),
    [
        ("SELECT EXTRACT(EPOCH FROM (a + INTERVAL '1 day'))", "EPOCH"),
        ("SELECT x::TEXT FROM t", ":: cast"),
        ("CREATE TABLE t (x TIMESTAMPTZ)", "type name outside CAST"),
    ],
)
def test_constructs_without_a_rewrite_are_refused_with_their_line(sql, what):
    with pytest.raises(SparkTranslationError, match=f"{what}.*line 1"):
        to_spark_sql(sql)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"dataset": {"windows_days": [7, 30, 400]}, "churn": {"population": "ever"}},
        {"dataset": {"text_recent_orders": 0, "text_recent_reviews": 0, "text_recent_events": 0}},
    ],
)
def test_every_feature_query_translates(overrides):
    """No construct of the real queries is left without a rewrite (any config shape)."""
    config = Config().with_overrides(overrides)
    for sql in (
        feature_sql(config, 3, labels=True),
        feature_sql(config, 1, labels=False, customer_range=True, order_by="p.customer_id"),
        btyd_summary_sql(config),
    ):
        out = to_spark_sql(sql)
        assert "EPOCH" not in out and "TIMESTAMPTZ" not in out and "DOUBLE PRECISION" not in out
