"""Great Expectations validation of the raw warehouse tables (suites live in ``expectations/``).

Importing this package is cheap; Great Expectations itself loads when a validation runs.
"""

from pipelines.validation.core import ValidationSetupError, validate_warehouse
from pipelines.validation.report import ValidationFailed, ValidationFailure, ValidationReport

__all__ = [
    "ValidationFailed",
    "ValidationFailure",
    "ValidationReport",
    "ValidationSetupError",
    "validate_warehouse",
]
