"""What a validation run returns, and how a failed GX result becomes one readable line.

Why our own types instead of GX's result objects: DAG tasks, the CLI and tests need a short,
stable answer ("which table, which column, which rule, what was seen"), not GX's nested JSON.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pipelines.contract import ExitCode

# Keyword arguments that identify the batch or are shown elsewhere in the line.
_HIDDEN_KWARGS = {
    "batch_id",
    "column",
    "column_list",
    "column_set",
    "unexpected_rows_query",
    "exact_match",
    "result_format",
    "catch_exceptions",
    "meta",
    "description",
    "notes",
    "mostly",
}


@dataclass(frozen=True)
class ValidationFailure:
    table: str
    column: str | None
    expectation: str  # GX expectation type, e.g. expect_column_values_to_be_between
    detail: str  # "expectation(args) failed: what was observed"

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        return f"{where}: {self.detail}"


@dataclass
class ValidationReport:
    success: bool
    failures: list[ValidationFailure]
    data_docs_path: str
    statistics: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        s = self.statistics
        verdict = "passed" if self.success else "FAILED"
        return (
            f"validation {verdict} as of {s.get('as_of')}: {s.get('successful_expectations', 0)}/"
            f"{s.get('evaluated_expectations', 0)} expectations met on {len(s.get('tables', {}))} table(s)"
            f" in {s.get('seconds', 0):.1f} s"
        )


class ValidationFailed(Exception):  # noqa: N818 - the name is the documented task-level API
    """Raw data broke an expectation; downstream jobs must not run on it. CLI exit code 3."""

    exit_code = ExitCode.VALIDATION

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        lines = [f"{report.summary()}; {len(report.failures)} failure(s):"]
        lines += [f"  {failure}" for failure in report.failures]
        lines.append(f"Data Docs: {report.data_docs_path}")
        super().__init__("\n".join(lines))


def _fmt(value: Any, *, compact_floats: bool = False) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if compact_floats and isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def _signature(expectation: str, kwargs: dict[str, Any], description: str | None) -> str:
    if description:
        return f"{expectation} ({description})"
    args = ", ".join(
        f"{k}={_fmt(v, compact_floats=True)}" for k, v in kwargs.items() if k not in _HIDDEN_KWARGS and v is not None
    )
    return f"{expectation}({args})"


def _examples(values: list[Any], limit: int = 3) -> str:
    shown = ", ".join(_fmt(v) for v in values[:limit])
    return f" (e.g. {shown})" if shown else ""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def describe_result(table: str, result: Any) -> ValidationFailure:
    """Turn one failed ``ExpectationValidationResult`` into a ``ValidationFailure``."""
    config = result.expectation_config
    expectation = config.type
    kwargs = dict(config.kwargs)
    meta = config.meta or {}
    column = kwargs.get("column") or meta.get("column")
    if kwargs.get("column_list"):
        column = ",".join(kwargs["column_list"])
    signature = _signature(expectation, kwargs, getattr(config, "description", None))
    observed = _observed(expectation, result.result or {}, result.exception_info)
    if expectation == "expect_table_columns_to_match_set":
        mismatch = (result.result or {}).get("details", {}).get("mismatched", {})
        missing = mismatch.get("missing") or []
        column = ",".join(missing) if missing else ",".join(mismatch.get("unexpected") or []) or None
    return ValidationFailure(
        table=table, column=column, expectation=expectation, detail=f"{signature} failed: {observed}"
    )


def order_failures(failures: list[ValidationFailure]) -> list[ValidationFailure]:
    """Table-level failures first, then by column; drop follow-on errors on a column that is missing.

    Why: when a column is dropped every rule on it errors out too; the one useful line is
    "missing column(s) x" from the column-set expectation.
    """
    missing: set[str] = set()
    for f in failures:
        if f.expectation == "expect_table_columns_to_match_set" and "missing column(s)" in f.detail:
            missing.update((f.column or "").split(","))
    kept = [
        f
        for f in failures
        if f.expectation == "expect_table_columns_to_match_set"
        or not (f.column in missing and "could not be evaluated" in f.detail)
    ]
    return sorted(kept, key=lambda f: (not f.expectation.startswith("expect_table_"), f.column or "", f.expectation))


def _observed(expectation: str, res: dict[str, Any], exception_info: Any) -> str:
    raised = _exception_message(exception_info)
    if raised:
        return f"could not be evaluated: {raised}"
    if expectation == "expect_table_columns_to_match_set":
        mismatch = res.get("details", {}).get("mismatched", {})
        parts = []
        if mismatch.get("missing"):
            parts.append("missing column(s) " + ", ".join(mismatch["missing"]))
        if mismatch.get("unexpected"):
            parts.append("unexpected column(s) " + ", ".join(mismatch["unexpected"]))
        return "; ".join(parts) or f"observed {res.get('observed_value')}"
    if expectation == "unexpected_rows_expectation":
        rows = res.get("details", {}).get("unexpected_rows") or []
        count = res.get("observed_value")
        count = count if isinstance(count, int) else len(rows)
        return f"{_plural(count, 'unexpected row')}{_examples([_row(r) for r in rows])}"
    if "unexpected_count" in res:
        count = int(res.get("unexpected_count") or 0)
        return _plural(count, "unexpected value") + _examples(res.get("partial_unexpected_list") or [])
    if "observed_value" in res:
        return f"observed {_fmt(res['observed_value'])}"
    return "failed"


def _row(row: Any) -> Any:
    return dict(row) if isinstance(row, dict) else row


def _exception_message(exception_info: Any) -> str | None:
    """GX stores either one {raised_exception, exception_message} dict or one per failed metric."""
    if not isinstance(exception_info, dict):
        return None
    if "raised_exception" in exception_info:
        return _first_line(exception_info.get("exception_message")) if exception_info.get("raised_exception") else None
    for info in exception_info.values():
        if isinstance(info, dict) and info.get("exception_message"):
            return _first_line(info["exception_message"])
    return None


def _first_line(message: Any) -> str:
    text = str(message).strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:300]
    return text[:300]
