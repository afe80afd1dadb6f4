"""User-facing registry errors: the CLI prints their message and exits with ``exit_code``."""

from __future__ import annotations


class RegistryError(RuntimeError):
    """A registry operation cannot proceed (no champion, unknown version, unreachable registry)."""

    exit_code = 5


class NoChampionError(RegistryError):
    """The registered model has no ``@champion`` alias yet."""


class UnknownVersionError(RegistryError):
    """The requested model version does not exist."""


class RegistryUnavailableError(RegistryError):
    """The tracking / registry server cannot be reached."""
