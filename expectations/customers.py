"""Expectations for ``customers``: the population every feature, label and score hangs off."""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from pipelines.contract import CUSTOMERS as T
from pipelines.validation.rules import (
    SuiteContext,
    column_types,
    columns_match_contract,
    has_rows,
    in_contract_range,
    not_after_as_of,
    required_not_null,
)


def build_suite(ctx: SuiteContext) -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name=T.name)
    add = suite.add_expectation
    add(
        columns_match_contract(T)
    )  # feature SQL selects columns by name: a renamed or missing column breaks every job downstream
    for e in column_types(ctx, T):
        add(e)  # a text customer_id or a naive signup_at silently breaks joins and tenure math
    add(has_rows(ctx, T.name))  # no customers means an empty population: training and scoring would run on nothing
    add(
        gxe.ExpectColumnValuesToBeUnique(column="customer_id")
    )  # customer_id is the join key: duplicates would double-count orders and scores
    for e in required_not_null(T):
        add(e)  # a null key or signup date drops the customer from every join and tenure band
    add(
        in_contract_range(T, "birth_year")
    )  # implausible birth years (0, 9999) are typos that would skew demographic features
    add(
        not_after_as_of(ctx, "signup_at")
    )  # a signup after the as-of date is future data leaking into the training cutoff
    return suite
