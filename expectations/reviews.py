"""Expectations for ``reviews``: ratings and free text for the customer's text view; may be empty."""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from pipelines.contract import REVIEWS as T
from pipelines.validation.rules import (
    SuiteContext,
    column_types,
    columns_match_contract,
    foreign_key,
    has_rows,
    in_contract_range,
    not_after_as_of,
    recent_rows,
    required_not_null,
)


def build_suite(ctx: SuiteContext) -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name=T.name)
    add = suite.add_expectation
    add(columns_match_contract(T))  # the text view selects columns by name: a missing column breaks dataset building
    for e in column_types(ctx, T):
        add(e)  # a text rating or naive reviewed_at breaks averages and time windows
    add(has_rows(ctx, T.name))  # recorded for Data Docs; a shop without reviews is allowed unless configured otherwise
    add(
        gxe.ExpectColumnValuesToBeUnique(column="review_id")
    )  # duplicated reviews over-weight one opinion in the text view
    for e in required_not_null(T):
        add(e)  # a review without author, rating or time cannot be attributed or ordered
    add(
        foreign_key(ctx, T, "customer_id")
    )  # reviews by unknown customers are dropped by joins (broken import or key drift)
    add(
        in_contract_range(T, "rating")
    )  # ratings are 1..5 stars: a 0 or 7 is a scale mix-up (e.g. 10-point source) that skews averages
    add(not_after_as_of(ctx, "reviewed_at"))  # a review after the as-of date is future data leaking into the text view
    if ctx.must_be_recent(T.name):
        add(
            recent_rows(ctx, T.name, "reviewed_at")
        )  # only when configured: a non-empty review feed with nothing recent has stopped
    return suite
