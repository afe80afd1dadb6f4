"""Expectations for ``orders``: the churn label is defined on completed orders, so these rules matter most."""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from pipelines.contract import ORDERS as T
from pipelines.validation.rules import (
    SuiteContext,
    column_types,
    columns_match_contract,
    finite_numbers,
    foreign_key,
    has_rows,
    in_allowed_values,
    in_contract_range,
    not_after_as_of,
    recent_rows,
    required_not_null,
)


def build_suite(ctx: SuiteContext) -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name=T.name)
    add = suite.add_expectation
    add(
        columns_match_contract(T)
    )  # label and feature SQL select columns by name: a missing column breaks every job downstream
    for e in column_types(ctx, T):
        add(e)  # an amount stored as text or a naive timestamp silently changes sums and cutoffs
    add(has_rows(ctx, T.name))  # no orders means no labels: every customer would look churned
    add(
        gxe.ExpectColumnValuesToBeUnique(column="order_id")
    )  # order_id is the key: duplicates double-count frequency and monetary value
    for e in required_not_null(T):
        add(e)  # a null id, customer, time or status drops the order from labels and features
    add(
        foreign_key(ctx, T, "customer_id")
    )  # an order of an unknown customer is lost by the population join (broken import or key drift)
    add(
        in_allowed_values(T, "status")
    )  # the label counts status = 'completed': a new spelling would silently turn buyers into churners
    for e in finite_numbers(ctx, T):
        add(e)  # NaN or infinity passes range rules and poisons every sum, mean and score built on it
    add(
        in_contract_range(T, "total_amount")
    )  # negative totals are refunds booked as orders and corrupt monetary features
    add(
        not_after_as_of(ctx, "ordered_at")
    )  # an order after the as-of date is future data: the label would leak into the features
    if ctx.must_be_recent(T.name):
        add(
            recent_rows(ctx, T.name, "ordered_at")
        )  # no order in the freshness window means a stale feed: everyone would look churned
    return suite
