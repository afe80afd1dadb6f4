"""User-facing registry errors: the CLI prints their message and exits with ``exit_code``."""

from __future__ import annotations

from pipelines.contract import ExitCode
from pipelines.tracking import RegistryUnavailableError

__all__ = ["NoChampionError", "RegistryError", "RegistryUnavailableError", "UnknownVersionError"]


class RegistryError(RuntimeError):
    """A registry operation cannot proceed (no champion, unknown version, unreachable registry)."""

    exit_code = ExitCode.REGISTRY


class NoChampionError(RegistryError):
    """The registered model has no ``@champion`` alias yet."""


class UnknownVersionError(RegistryError):
    """The requested model version does not exist."""
