"""Expectations for ``products``: the optional catalogue (a purchase log alone leaves it empty)."""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from pipelines.contract import PRODUCTS as T
from pipelines.validation.rules import (
    SuiteContext,
    column_types,
    columns_match_contract,
    finite_numbers,
    has_rows,
    in_contract_range,
    required_not_null,
)


def build_suite(ctx: SuiteContext) -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name=T.name)
    add = suite.add_expectation
    add(
        columns_match_contract(T)
    )  # the text view reads title/category by name: a missing column breaks dataset building
    for e in column_types(ctx, T):
        add(e)  # a text price or product_id breaks numeric features and joins to order_items
    add(
        has_rows(ctx, T.name)
    )  # recorded for Data Docs; empty is allowed unless validation.require_non_empty lists products
    add(
        gxe.ExpectColumnValuesToBeUnique(column="product_id")
    )  # product_id is the join key: duplicates would fan out order lines
    for e in required_not_null(T):
        add(e)  # a product without id, title or price cannot be joined or described
    for e in finite_numbers(ctx, T):
        add(e)  # NaN or infinity passes range rules and poisons every sum, mean and score built on it
    add(in_contract_range(T, "price"))  # a negative list price is a sign-flipped or corrupted import
    return suite
