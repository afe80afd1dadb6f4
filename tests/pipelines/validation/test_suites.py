"""The suites in expectations/ cover every contract rule, and every rule says what it guards (no warehouse)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from pipelines.contract import RAW_TABLES, ExitCode, Table
from pipelines.validation.core import EXPECTATIONS_DIR, load_suite_builder
from pipelines.validation.rules import SuiteContext

CTX = SuiteContext(as_of=dt.date(2025, 12, 31), schema="main")


def _by_type(suite, type_: str) -> list[dict]:
    return [e.configuration.kwargs | {"meta": e.meta or {}} for e in suite.expectations if e.expectation_type == type_]


@pytest.fixture(scope="module")
def gx_context():
    """GX only builds suites inside an active data context."""
    import great_expectations as gx

    return gx.get_context(mode="ephemeral")


@pytest.fixture(scope="module")
def suites(gx_context):
    return {t.name: load_suite_builder(t.name)(CTX) for t in RAW_TABLES}


@pytest.mark.parametrize("table", RAW_TABLES, ids=lambda t: t.name)
def test_suite_covers_the_contract(suites, table: Table):
    suite = suites[table.name]
    assert suite.name == table.name
    [column_set] = [e for e in suite.expectations if e.expectation_type == "expect_table_columns_to_match_set"]
    assert sorted(column_set.column_set) == sorted(table.column_names) and column_set.exact_match is True
    assert {k["column"] for k in _by_type(suite, "expect_column_values_to_be_of_type")} == set(table.column_names)
    not_null = {k["column"] for k in _by_type(suite, "expect_column_values_to_not_be_null")}
    assert not_null == {c.name for c in table.columns if not c.nullable}
    unique = {k["column"] for k in _by_type(suite, "expect_column_values_to_be_unique")} | {
        tuple(k["column_list"]) for k in _by_type(suite, "expect_compound_columns_to_be_unique")
    }
    assert (table.primary_key[0] if len(table.primary_key) == 1 else table.primary_key) in unique
    in_set = {k["column"]: k["value_set"] for k in _by_type(suite, "expect_column_values_to_be_in_set")}
    assert in_set == {c.name: list(c.allowed_values) for c in table.columns if c.allowed_values}
    between = _by_type(suite, "expect_column_values_to_be_between")
    for col in table.columns:
        if col.min_value is not None or col.max_value is not None:
            assert {"column": col.name, "min": col.min_value, "max": col.max_value} in [
                {"column": k["column"], "min": k.get("min_value"), "max": k.get("max_value")} for k in between
            ]
    if table.time_column:  # nothing after the end of the as-of day (UTC)
        assert {"column": table.time_column, "max": dt.datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)} in [
            {"column": k["column"], "max": k.get("max_value")} for k in between
        ]
    fk_columns = {
        k["meta"]["column"]
        for k in _by_type(suite, "unexpected_rows_expectation")
        if k["meta"].get("rule") == "foreign_key"
    }
    assert fk_columns == {fk.column for fk in table.foreign_keys}
    [row_count] = _by_type(suite, "expect_table_row_count_to_be_between")
    assert row_count["min_value"] == (1 if table.name in ("customers", "orders") else 0)


def test_freshness_is_configurable(suites):
    def freshness(suite):
        return [k for k in _by_type(suite, "unexpected_rows_expectation") if k["meta"].get("rule") == "freshness"]

    assert {t for t, s in suites.items() if freshness(s)} == {"orders", "events"}
    [events] = freshness(suites["events"])
    assert "COUNT(*) > 0" in events["unexpected_rows_query"]  # an empty clickstream is allowed
    [orders] = freshness(suites["orders"])
    assert (
        "COUNT(*) > 0" not in orders["unexpected_rows_query"]
        and "2025-12-02 00:00:00+00:00" in orders["unexpected_rows_query"]
    )
    ctx = SuiteContext(as_of=dt.date(2025, 12, 31), schema="main", freshness_days=7, require_recent=frozenset())
    assert not freshness(load_suite_builder("orders")(ctx))


def test_every_expectation_line_says_what_it_guards():
    for path in sorted(EXPECTATIONS_DIR.glob("*.py")):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            if re.match(r"\s+add\(", line):
                # the comment sits on the add( line, or on the line that closes a call the formatter wrapped
                statement = [line] if line.rstrip().split("  # ")[0].endswith(")") else lines[number - 1 : number + 2]
                comment = " ".join(part.partition("  # ")[2] for part in statement)
                assert len(comment) > 20, f"{path.name}:{number} adds an expectation without a risk comment"


def test_report_message_names_table_column_and_expectation():
    from pipelines.validation.report import ValidationFailed, ValidationFailure, ValidationReport, order_failures

    failures = order_failures(
        [
            ValidationFailure(
                "orders",
                "total_amount",
                "expect_column_values_to_be_between",
                "expect_column_values_to_be_between(min_value=0) failed: 1 unexpected value (e.g. -5.0)",
            ),
            ValidationFailure(
                "products",
                "title",
                "expect_column_values_to_not_be_null",
                "expect_column_values_to_not_be_null() failed: could not be evaluated: no column",
            ),
            ValidationFailure(
                "products",
                "title",
                "expect_table_columns_to_match_set",
                "expect_table_columns_to_match_set() failed: missing column(s) title",
            ),
        ]
    )
    assert [f.expectation for f in failures] == [
        "expect_table_columns_to_match_set",
        "expect_column_values_to_be_between",
    ]
    report = ValidationReport(False, failures, "/x/index.html", {"as_of": "2025-12-31"})
    exc = ValidationFailed(report)
    assert exc.exit_code == ExitCode.VALIDATION and exc.report is report
    assert (
        "orders.total_amount: expect_column_values_to_be_between(min_value=0) failed: 1 unexpected value (e.g. -5.0)"
    ) in str(exc)
    assert "products.title: expect_table_columns_to_match_set() failed: missing column(s) title" in str(exc)


def test_config_rejects_unknown_tables():
    from pipelines.config import Config, ConfigError

    with pytest.raises(ConfigError, match="validation.require_recent"):
        Config().with_overrides({"validation": {"require_recent": ["order"]}})


@pytest.mark.parametrize("table", RAW_TABLES, ids=lambda t: t.name)
def test_every_floating_point_column_has_a_finite_rule(suites, table: Table):
    finite = {
        k["meta"]["column"]: k["unexpected_rows_query"]
        for k in _by_type(suites[table.name], "unexpected_rows_expectation")
        if k["meta"].get("rule") == "finite"
    }
    assert set(finite) == {c.name for c in table.columns if c.type == "double"}
    for query in finite.values():
        assert "'NaN'" in query and "'Infinity'" in query and "'-Infinity'" in query
