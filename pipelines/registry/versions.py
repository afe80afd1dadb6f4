"""Model registry: versions of ``churn-risk`` and the aliases ``@challenger`` / ``@champion``.

Everything that needs "the production model" reads the ``champion`` alias and resolves it once to a
fixed version, so moving the alias (here, via the CLI, or in the MLflow UI) is the one way to promote.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines import tracking as t
from pipelines.config import Config
from pipelines.registry.errors import (
    NoChampionError,
    RegistryError,
    RegistryUnavailableError,
    UnknownVersionError,
)

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
# Model version tags.
VTAG_KIND = "candidate_kind"
VTAG_AS_OF = "as_of"
VTAG_PREVIOUS = "previous_champion"
VTAG_ROLLED_BACK_FROM = "rolled_back_from"
VTAG_DECISION = "gate.decision"
VTAG_REASONS = "gate.reasons"
VERSION_METRICS = ("test_pr_auc", "test_roc_auc", "test_brier", "val_pr_auc")
READY_TIMEOUT_S = 300


@dataclass(frozen=True)
class ModelRef:
    """A registered model resolved to one fixed version."""

    name: str
    version: str
    run_id: str | None
    model_uri: str  # models:/<name>/<version>: never an alias, so a job keeps scoring with one version


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def registry_client(config: Config):
    """A client on the configured store (one place, so every registry call fails the same way)."""
    return t.client_for(config)


def get_version(client, name: str, version: str | int):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        if getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise UnknownVersionError(
                f"model {name!r} has no version {version!r}; {_versions_hint(client, name)}"
            ) from exc
        raise RegistryUnavailableError(f"MLflow registry at {client.tracking_uri}: {exc.message}") from exc


def _versions_hint(client, name: str) -> str:
    """What exists instead: ``versions: 1, 2 (@champion), 3 (@challenger)`` (or none yet)."""
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except Exception:  # the hint is a courtesy; the error itself stands
        return "`churn models` lists the versions"
    if not versions:
        return "it has no versions yet (train one with `churn train --as-of DATE`)"
    try:  # search results carry no aliases; the registered model does
        aliases = dict(client.get_registered_model(name).aliases or {})
    except Exception:
        aliases = {}
    described = []
    for mv in sorted(versions, key=lambda v: int(v.version)):
        names = sorted("@" + a for a, v in aliases.items() if str(v) == str(mv.version))
        described.append(str(mv.version) + (f" ({', '.join(names)})" if names else ""))
    return "versions: " + ", ".join(described)


def alias_version(client, name: str, alias: str) -> str | None:
    """Version the alias points to, None if the alias (or the model) does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise RegistryUnavailableError(
            f"MLflow registry at {client.tracking_uri} failed or is unreachable: {exc.message}"
        ) from exc
    except Exception as exc:
        raise RegistryUnavailableError(f"MLflow registry at {client.tracking_uri} is unreachable: {exc}") from exc


def set_version_tags(client, name: str, version: str, tags: dict[str, Any]) -> None:
    for key, value in tags.items():
        if value is None:
            continue
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        client.set_model_version_tag(name, version, key, text[:5000])


# ----------------------------------------------------------------------------------------------
# register / resolve / load
# ----------------------------------------------------------------------------------------------


def register_candidate(config: Config, run_id: str) -> str:
    """Register the run's logged model as a new version of ``registry.model_name`` with alias ``challenger``."""
    import mlflow

    client = registry_client(config)
    run = t.get_run(client, run_id)
    model_id = run.data.tags.get(t.TAG_MODEL_ID)
    if not model_id:
        raise RegistryError(f"run {run_id} has no logged model to register")
    name = config.registry.model_name
    metrics = run.data.metrics
    tags = {
        VTAG_KIND: run.data.tags.get(t.TAG_KIND),
        VTAG_AS_OF: run.data.tags.get(t.TAG_AS_OF),
        "manifest_path": run.data.tags.get(t.TAG_MANIFEST),
        **{key: metrics[key] for key in VERSION_METRICS if key in metrics},
    }
    if "test_brier" in metrics:
        tags["brier"] = metrics["test_brier"]
    if "test_pr_auc" not in metrics:
        logger.warning("run %s has no test metrics yet (evaluate_run not called?)", run_id)
    with t.use_tracking(config):  # the fluent register_model resolves models:/ through the process-wide URI
        mv = mlflow.register_model(
            f"models:/{model_id}",
            name,
            await_registration_for=READY_TIMEOUT_S,
            tags={k: str(v) for k, v in tags.items() if v is not None},
        )
    version = str(mv.version)
    _wait_ready(client, name, version)
    client.set_registered_model_alias(name, CHALLENGER, version)
    client.update_model_version(name, version, description=_version_description(run, tags))
    logger.info("registered %s version %s (run %s) as @%s", name, version, run_id, CHALLENGER)
    return version


def _version_description(run, tags: dict) -> str:
    parts = [f"{tags.get(VTAG_KIND)} model trained as of {tags.get(VTAG_AS_OF)} (run {run.info.run_id})."]
    for key in ("test_pr_auc", "test_roc_auc", "brier"):
        if tags.get(key) is not None:
            parts.append(f"{key}={float(tags[key]):.4f}")
    return " ".join(parts)


def _wait_ready(client, name: str, version: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        status = str(client.get_model_version(name, version).status)
        if status.endswith("READY"):
            return
        if "FAILED" in status:
            raise RegistryError(f"{name} version {version} failed to register ({status})")
        if time.monotonic() > deadline:
            raise RegistryError(f"{name} version {version} not READY after {timeout_s:.0f}s ({status})")
        time.sleep(1)


def resolve_champion(config: Config) -> ModelRef:
    """Resolve ``@champion`` once to a fixed version; raise NoChampionError, never fall back to "latest"."""
    client = registry_client(config)
    name = config.registry.model_name
    version = alias_version(client, name, CHAMPION)
    if version is None:
        raise NoChampionError(
            f"registered model {name!r} has no @{CHAMPION} alias at {config.tracking_uri}: train and promote a "
            f"model first (`churn train --as-of DATE`, then `churn promote VERSION`)"
        )
    mv = get_version(client, name, version)
    return ModelRef(name=name, version=str(mv.version), run_id=mv.run_id, model_uri=f"models:/{name}/{mv.version}")


def _model_uri(name: str, version: str) -> str:
    return f"models:/{name}/{version}"


def load_model_version(config: Config, version: str | int, *, cache_dir: str | Path | None = None, **options) -> Any:
    """The version's bundle as a ChurnPredictor (fast path: no pyfunc wrapper). ``options`` go to load_bundle
    (e.g. ``precision="bf16", batch_size=64``). Bundles are downloaded once into a cache next to the datasets
    (``data/models/<name>/v<version>-<model id>/``; ``cache_dir`` overrides)."""
    client = registry_client(config)
    name = config.registry.model_name
    mv = get_version(client, name, version)
    # the key names the logged model too: version numbers restart in a fresh store or on another server
    identity = getattr(mv, "model_id", None) or mv.run_id or "unknown"
    bundle = t.cached_model_bundle(
        config, _model_uri(name, str(mv.version)), key=f"{name}/v{mv.version}-{identity}", cache_dir=cache_dir
    )
    from pipelines.models import BundleError, load_bundle

    try:
        return load_bundle(str(bundle), **options)
    except BundleError as exc:  # the local copy was damaged after download: say which one and how to refresh it
        raise BundleError(
            f"{name} v{mv.version} (cached at {bundle}): {exc}; delete {bundle.parent} to download it again"
        ) from exc


# ----------------------------------------------------------------------------------------------
# promote / rollback
# ----------------------------------------------------------------------------------------------


ALIAS_MOVE_ATTEMPTS = 5


def _move_champion(config: Config, client, name: str, move) -> Any:
    """Compare-and-set ``@champion``: ``move(current)`` writes its tags and returns ``(target, result)``.

    Why: MLflow moves an alias last-writer-wins, so two promotions that both read champion v1 would both
    record ``previous_champion = 1`` and rollback would skip a version. Every move runs under the store's
    lock (``tracking.store_lock``: exact on a SQLite store) and re-reads the alias right before moving it;
    if it moved meanwhile (a server store, where there is no lock), the whole move is redone, up to
    ``ALIAS_MOVE_ATTEMPTS`` times. ``move`` returns ``(None, result)`` to leave the alias as it is.
    """
    for attempt in range(ALIAS_MOVE_ATTEMPTS):
        with t.store_lock(config, "aliases"):
            current = alias_version(client, name, CHAMPION)
            target, result = move(current)
            if target is None:
                return result
            if alias_version(client, name, CHAMPION) == current:
                client.set_registered_model_alias(name, CHAMPION, target)
                return result
        logger.warning("@%s of %s moved during a promotion; retrying (%d)", CHAMPION, name, attempt + 1)
        time.sleep(0.05 * (attempt + 1))
    raise RegistryError(
        f"@{CHAMPION} of {name} kept moving during {ALIAS_MOVE_ATTEMPTS} attempts (other promotions at "
        f"{t.redact_uri(config.tracking_uri)}); retry once they have finished"
    )


def promote(config: Config, version: str | int, reason: str = "manual promotion") -> dict:
    """Move ``@champion`` to ``version``; the old champion is recorded as ``previous_champion`` on it."""
    client = registry_client(config)
    name = config.registry.model_name
    version = str(get_version(client, name, version).version)

    def move(previous: str | None):
        if previous == version:
            logger.info("%s version %s is already @%s", name, version, CHAMPION)
            return None, {"version": version, "previous": previous, "changed": False}
        tags = {"promoted_at": now_iso(), "promotion_reason": reason, VTAG_PREVIOUS: previous}
        set_version_tags(client, name, version, tags)
        return version, {"version": version, "previous": previous, "changed": True}

    result = _move_champion(config, client, name, move)
    if result["changed"]:
        logger.info("promoted %s version %s to @%s (was %s): %s", name, version, CHAMPION, result["previous"], reason)
    return result


def rollback(config: Config) -> str:
    """Move ``@champion`` back to the version it replaced (``previous_champion`` tag); returns that version."""
    client = registry_client(config)
    name = config.registry.model_name

    def move(current: str | None):
        if current is None:
            raise NoChampionError(f"registered model {name!r} has no @{CHAMPION}: nothing to roll back")
        previous = get_version(client, name, current).tags.get(VTAG_PREVIOUS)
        if not previous:
            raise RegistryError(
                f"{name} version {current} (@{CHAMPION}) has no {VTAG_PREVIOUS!r} tag: no earlier "
                f"champion recorded; use `churn promote VERSION` to pick one"
            )
        get_version(client, name, previous)  # still exists?
        set_version_tags(client, name, previous, {VTAG_ROLLED_BACK_FROM: current, "rolled_back_at": now_iso()})
        set_version_tags(client, name, current, {"rolled_back": "true"})
        return previous, (current, previous)

    current, previous = _move_champion(config, client, name, move)
    logger.info("rolled back %s @%s from version %s to %s", name, CHAMPION, current, previous)
    return str(previous)


# ----------------------------------------------------------------------------------------------
# listing and comparing
# ----------------------------------------------------------------------------------------------


def version_row(client, mv, aliases: dict[str, list[str]]) -> dict[str, Any]:
    tags = dict(mv.tags or {})
    metrics: dict[str, float] = {}
    try:
        run_metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
    except Exception:
        run_metrics = {}
    for key in ("test_pr_auc", "test_roc_auc", "test_brier", "val_pr_auc"):
        if key in run_metrics:
            metrics[key] = float(run_metrics[key])
        elif key in tags:
            with contextlib.suppress(ValueError):
                metrics[key] = float(tags[key])
    created = dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, dt.UTC).replace(microsecond=0)
    return {
        "version": str(mv.version),
        "aliases": sorted(aliases.get(str(mv.version), [])),
        "created": created.isoformat(),
        "run_id": mv.run_id,
        "kind": tags.get(VTAG_KIND),
        "as_of": tags.get(VTAG_AS_OF),
        "gate": tags.get(VTAG_DECISION),
        **metrics,
    }


def list_versions(config: Config) -> list[dict]:
    """Every version of the registered model, newest first, with aliases and key metrics."""
    from mlflow.exceptions import MlflowException

    client = registry_client(config)
    name = config.registry.model_name
    try:
        registered = client.get_registered_model(name)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise RegistryUnavailableError(f"MLflow registry at {config.tracking_uri}: {exc.message}") from exc
    aliases: dict[str, list[str]] = {}
    for alias, version in (registered.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    versions = client.search_model_versions(f"name='{name}'")
    rows = [version_row(client, mv, aliases) for mv in versions]
    return sorted(rows, key=lambda row: int(row["version"]), reverse=True)
