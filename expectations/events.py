"""Expectations for ``events``: clickstream; may be empty for a purchase-log-only shop."""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from pipelines.contract import EVENTS as T
from pipelines.validation.rules import (
    SuiteContext,
    column_types,
    columns_match_contract,
    foreign_key,
    has_rows,
    in_allowed_values,
    not_after_as_of,
    recent_rows,
    required_not_null,
)


def build_suite(ctx: SuiteContext) -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name=T.name)
    add = suite.add_expectation
    add(
        columns_match_contract(T)
    )  # engagement features select columns by name: a missing column breaks dataset building
    for e in column_types(ctx, T):
        add(e)  # a text event_at or customer_id breaks time windows and joins
    add(
        has_rows(ctx, T.name)
    )  # recorded for Data Docs; no clickstream is allowed (purchase-log-only) unless configured otherwise
    add(
        gxe.ExpectColumnValuesToBeUnique(column="event_id")
    )  # duplicated events (replayed batches) inflate engagement counts
    for e in required_not_null(T):
        add(e)  # an event without customer, type or time cannot be counted in any window
    add(
        foreign_key(ctx, T, "customer_id")
    )  # events of unknown customers are dropped by joins (broken import or anonymous traffic)
    add(
        in_allowed_values(T, "event_type")
    )  # features count known event types: a renamed type would silently read as zero activity
    add(not_after_as_of(ctx, "event_at"))  # an event after the as-of date is future data leaking into the features
    if ctx.must_be_recent(T.name):
        add(recent_rows(ctx, T.name, "event_at"))  # a non-empty clickstream with nothing recent means the feed stopped
    return suite
