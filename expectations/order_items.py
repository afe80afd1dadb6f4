"""Expectations for ``order_items``: order lines feed basket, category and quantity features."""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from pipelines.contract import ORDER_ITEMS as T
from pipelines.validation.rules import (
    SuiteContext,
    column_types,
    columns_match_contract,
    finite_numbers,
    foreign_key,
    has_rows,
    in_contract_range,
    required_not_null,
)


def build_suite(ctx: SuiteContext) -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name=T.name)
    add = suite.add_expectation
    add(columns_match_contract(T))  # basket features select columns by name: a missing column breaks dataset building
    for e in column_types(ctx, T):
        add(e)  # a text quantity or unit_price would break or silently distort basket sums
    add(
        has_rows(ctx, T.name)
    )  # recorded for Data Docs; a purchase log without line items is allowed unless configured otherwise
    add(
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["order_id", "line_number"])
    )  # a repeated line double-counts basket value
    for e in required_not_null(T):
        add(e)  # a null order_id or line_number cannot be attributed to any order
    add(
        foreign_key(ctx, T, "order_id")
    )  # lines of an unknown order are dropped by joins: basket features would be understated
    add(
        foreign_key(ctx, T, "product_id", only_if_parent_has_rows=True)
    )  # with a catalogue loaded, unknown products lose their category
    add(in_contract_range(T, "line_number"))  # line numbers are 1-based: 0 or negatives point to a broken exporter
    add(
        in_contract_range(T, "quantity")
    )  # a line with quantity < 1 is a return or a bug and would distort units bought
    for e in finite_numbers(ctx, T):
        add(e)  # NaN or infinity passes range rules and poisons every sum, mean and score built on it
    add(in_contract_range(T, "unit_price"))  # negative prices are refunds booked as sales and corrupt spend features
    return suite
