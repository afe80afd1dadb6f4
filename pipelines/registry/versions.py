"""Model registry: versions of ``churn-risk``, aliases ``@challenger`` / ``@champion``, the promotion gate.

Everything that needs "the production model" reads the ``champion`` alias and resolves it once to a
fixed version, so moving the alias (here, via the CLI, or in the MLflow UI) is the one way to promote.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines import tracking as t
from pipelines.config import Config
from pipelines.registry import runs as r
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


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _client(config: Config):
    return t.client_for(config)


def _get_version(client, name: str, version: str | int):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        if getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise UnknownVersionError(f"model {name!r} has no version {version!r}") from exc
        raise RegistryUnavailableError(f"MLflow registry at {client.tracking_uri}: {exc.message}") from exc


def _alias_version(client, name: str, alias: str) -> str | None:
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


def _set_version_tags(client, name: str, version: str, tags: dict[str, Any]) -> None:
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

    client = _client(config)
    run = r.run_info(client, run_id)
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
    client = _client(config)
    name = config.registry.model_name
    version = _alias_version(client, name, CHAMPION)
    if version is None:
        raise NoChampionError(
            f"registered model {name!r} has no @{CHAMPION} alias at {config.tracking_uri}: train and promote a "
            f"model first (`churn train --as-of DATE`, then `churn promote VERSION`)"
        )
    mv = _get_version(client, name, version)
    return ModelRef(name=name, version=str(mv.version), run_id=mv.run_id, model_uri=f"models:/{name}/{mv.version}")


def _model_uri(name: str, version: str) -> str:
    return f"models:/{name}/{version}"


def load_model_version(config: Config, version: str | int, *, cache_dir: str | Path | None = None, **options) -> Any:
    """The version's bundle as a ChurnPredictor (fast path: no pyfunc wrapper). ``options`` go to load_bundle
    (e.g. ``precision="bf16", batch_size=64``). Bundles are downloaded once into a cache next to the datasets
    (``data/models/<name>/v<version>-<model id>/``; ``cache_dir`` overrides)."""
    client = _client(config)
    name = config.registry.model_name
    mv = _get_version(client, name, version)
    # the key names the logged model too: version numbers restart in a fresh store or on another server
    identity = getattr(mv, "model_id", None) or mv.run_id or "unknown"
    bundle = t.cached_model_bundle(
        config, _model_uri(name, str(mv.version)), key=f"{name}/v{mv.version}-{identity}", cache_dir=cache_dir
    )
    from pipelines.models import BundleError

    try:
        return r._load_bundle(bundle, **options)
    except BundleError as exc:  # the local copy was damaged after download: say which one and how to refresh it
        raise BundleError(
            f"{name} v{mv.version} (cached at {bundle}): {exc}; delete {bundle.parent} to download it again"
        ) from exc


# ----------------------------------------------------------------------------------------------
# promote / rollback
# ----------------------------------------------------------------------------------------------


def promote(config: Config, version: str | int, reason: str = "manual promotion") -> dict:
    """Move ``@champion`` to ``version``; the old champion is recorded as ``previous_champion`` on it."""
    client = _client(config)
    name = config.registry.model_name
    version = str(_get_version(client, name, version).version)
    previous = _alias_version(client, name, CHAMPION)
    if previous == version:
        logger.info("%s version %s is already @%s", name, version, CHAMPION)
        return {"version": version, "previous": previous, "changed": False}
    tags = {"promoted_at": _now(), "promotion_reason": reason}
    if previous is not None:
        tags[VTAG_PREVIOUS] = previous
    _set_version_tags(client, name, version, tags)
    client.set_registered_model_alias(name, CHAMPION, version)
    logger.info("promoted %s version %s to @%s (was %s): %s", name, version, CHAMPION, previous, reason)
    return {"version": version, "previous": previous, "changed": True}


def rollback(config: Config) -> str:
    """Move ``@champion`` back to the version it replaced (``previous_champion`` tag); returns that version."""
    client = _client(config)
    name = config.registry.model_name
    current = _alias_version(client, name, CHAMPION)
    if current is None:
        raise NoChampionError(f"registered model {name!r} has no @{CHAMPION}: nothing to roll back")
    previous = _get_version(client, name, current).tags.get(VTAG_PREVIOUS)
    if not previous:
        raise RegistryError(
            f"{name} version {current} (@{CHAMPION}) has no {VTAG_PREVIOUS!r} tag: no earlier "
            f"champion recorded; use `churn promote VERSION` to pick one"
        )
    _get_version(client, name, previous)  # still exists?
    _set_version_tags(client, name, previous, {VTAG_ROLLED_BACK_FROM: current, "rolled_back_at": _now()})
    _set_version_tags(client, name, current, {"rolled_back": "true"})
    client.set_registered_model_alias(name, CHAMPION, previous)
    logger.info("rolled back %s @%s from version %s to %s", name, CHAMPION, current, previous)
    return str(previous)


# ----------------------------------------------------------------------------------------------
# paired comparison and the promotion gate
# ----------------------------------------------------------------------------------------------


def _paired_evaluation(config: Config, client, new_version: str, old_version: str) -> dict[str, Any]:
    """Both versions scored on the newer version's test split; paired bootstrap of the PR-AUC difference."""
    from pipelines.datasets import load_training_sets
    from pipelines.evaluation import bootstrap_metric_difference, choose_threshold, compute_metrics

    name = config.registry.model_name
    new_mv = _get_version(client, name, new_version)
    run = r.run_info(client, new_mv.run_id)
    manifest_path = run.data.tags.get(t.TAG_MANIFEST)
    if not manifest_path:
        raise RegistryError(f"{name} version {new_version}: run {new_mv.run_id} has no {t.TAG_MANIFEST!r} tag")
    sets = load_training_sets(manifest_path)
    y_test = sets.test[r.LABEL_COLUMN].to_numpy()
    y_val = sets.validation[r.LABEL_COLUMN].to_numpy()
    scores: dict[str, np.ndarray] = {}
    metrics: dict[str, dict[str, float]] = {}
    for version in (new_version, old_version):
        predictor = load_model_version(config, version)
        missing = [c for c in predictor.feature_names if c not in sets.test.columns]
        if missing:
            raise RegistryError(
                f"{name} version {version} needs features missing from version {new_version}'s "
                f"test data: {', '.join(missing[:10])}"
            )
        threshold = choose_threshold(y_val, r._predict(predictor, sets.validation))
        scores[version] = r._predict(predictor, sets.test)
        metrics[version] = compute_metrics(y_test, scores[version], threshold=threshold)
    diff = bootstrap_metric_difference(
        y_test,
        scores[new_version],
        scores[old_version],
        "pr_auc",
        config.registry.bootstrap_rounds,
        config.training.seed,
    )
    return {"data": manifest_path, "rows": len(y_test), "metrics": metrics, "pr_auc_difference": diff}


def gate_decision(
    config: Config, challenger: dict[str, float], champion: dict[str, float], pr_auc_ci: dict[str, float]
) -> tuple[bool, list[str]]:
    """The promotion rule on paired metrics; returns (passed, reasons), one reason per criterion."""
    reg = config.registry
    reasons = []
    passed = True
    gain = challenger["pr_auc"] - champion["pr_auc"]
    ok = math.isfinite(gain) and gain >= reg.min_pr_auc_gain
    passed &= ok
    reasons.append(
        f"PR-AUC {challenger['pr_auc']:.4f} vs {champion['pr_auc']:.4f} (gain {gain:+.4f}, "
        f"needs >= {reg.min_pr_auc_gain:.4f}): {'ok' if ok else 'FAIL'}"
    )
    low, high = pr_auc_ci.get("ci_low", math.nan), pr_auc_ci.get("ci_high", math.nan)
    ok = math.isfinite(low) and low > 0
    passed &= ok
    reasons.append(
        f"paired bootstrap 95% CI of PR-AUC gain [{low:+.4f}, {high:+.4f}] "
        f"({reg.bootstrap_rounds} rounds, needs > 0): {'ok' if ok else 'FAIL'}"
    )
    drop = champion["roc_auc"] - challenger["roc_auc"]
    ok = math.isfinite(drop) and drop <= reg.max_metric_regression
    passed &= ok
    reasons.append(
        f"ROC-AUC {challenger['roc_auc']:.4f} vs {champion['roc_auc']:.4f} (drop {drop:+.4f}, "
        f"max {reg.max_metric_regression:.4f}): {'ok' if ok else 'FAIL'}"
    )
    rise = challenger["brier"] - champion["brier"]
    ok = math.isfinite(rise) and rise <= reg.max_metric_regression
    passed &= ok
    reasons.append(
        f"Brier {challenger['brier']:.4f} vs {champion['brier']:.4f} (rise {rise:+.4f}, "
        f"max {reg.max_metric_regression:.4f}): {'ok' if ok else 'FAIL'}"
    )
    return bool(passed), reasons


def run_promotion_gate(config: Config, version: str | int) -> dict:
    """Compare challenger ``version`` with the champion on the challenger's test split; promote if it passes
    and ``registry.auto_promote`` is true. The decision and reasons are recorded as version tags."""
    client = _client(config)
    name = config.registry.model_name
    version = str(_get_version(client, name, version).version)
    champion = _alias_version(client, name, CHAMPION)
    result: dict[str, Any] = {
        "promoted": False,
        "passed": False,
        "reasons": [],
        "challenger": version,
        "champion": champion,
    }
    tags: dict[str, Any] = {"gate.evaluated_at": _now(), "gate.champion_version": champion or "none"}
    if champion is None:
        result["passed"] = True
        result["reasons"] = ["no champion yet: the first challenger passes"]
    elif champion == version:
        result["passed"] = True
        result["reasons"] = [f"version {version} is already @{CHAMPION}"]
    else:
        try:
            paired = _paired_evaluation(config, client, version, champion)
        except RegistryError as exc:
            result["reasons"] = [f"cannot compare with champion {champion}: {exc}"]
        else:
            new, old = paired["metrics"][version], paired["metrics"][champion]
            diff = paired["pr_auc_difference"]
            result["passed"], result["reasons"] = gate_decision(config, new, old, diff)
            result["metrics"] = {
                "challenger": {k: new[k] for k in r.KEY_METRICS},
                "champion": {k: old[k] for k in r.KEY_METRICS},
                "pr_auc_difference": diff,
            }
            tags.update(
                {
                    "gate.pr_auc_gain": new["pr_auc"] - old["pr_auc"],
                    "gate.pr_auc_ci_low": diff.get("ci_low"),
                    "gate.pr_auc_ci_high": diff.get("ci_high"),
                    "gate.champion_pr_auc": old["pr_auc"],
                    "gate.challenger_pr_auc": new["pr_auc"],
                }
            )

    if result["passed"] and champion != version:
        if config.registry.auto_promote:
            promote(config, version, reason="promotion gate passed: " + "; ".join(result["reasons"]))
            result["promoted"] = True
            decision = "promoted"
        else:
            decision = "would promote (registry.auto_promote is false; promote with `churn promote " + version + "`)"
    elif result["passed"]:
        decision = "already champion"
    else:
        failed = [reason for reason in result["reasons"] if not reason.endswith(": ok")]
        decision = "refused: " + "; ".join(failed or result["reasons"])
    result["decision"] = decision
    tags.update(
        {
            VTAG_DECISION: decision,
            VTAG_REASONS: "\n".join(result["reasons"]),
            "gate.passed": str(result["passed"]).lower(),
        }
    )
    _set_version_tags(client, name, version, tags)
    logger.info("promotion gate for %s version %s vs champion %s: %s", name, version, champion, decision)
    return result


# ----------------------------------------------------------------------------------------------
# listing and comparing
# ----------------------------------------------------------------------------------------------


def _version_row(client, mv, aliases: dict[str, list[str]]) -> dict[str, Any]:
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

    client = _client(config)
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
    rows = [_version_row(client, mv, aliases) for mv in versions]
    return sorted(rows, key=lambda row: int(row["version"]), reverse=True)


def compare_versions(config: Config, a: str | int, b: str | int, *, paired: bool = True) -> dict:
    """Both versions' recorded metrics side by side, plus both scored on the newer version's test split."""
    client = _client(config)
    name = config.registry.model_name
    mv_a, mv_b = _get_version(client, name, a), _get_version(client, name, b)
    aliases: dict[str, list[str]] = {}
    for alias, version in (client.get_registered_model(name).aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    out: dict[str, Any] = {"a": _version_row(client, mv_a, aliases), "b": _version_row(client, mv_b, aliases)}
    if paired and str(mv_a.version) != str(mv_b.version):
        newer, older = (mv_a, mv_b) if int(mv_a.version) > int(mv_b.version) else (mv_b, mv_a)
        try:
            result = _paired_evaluation(config, client, str(newer.version), str(older.version))
        except Exception as exc:  # e.g. datasets no longer on disk: recorded metrics still compare
            out["paired"] = {"error": str(exc)}
        else:
            new_m, old_m = result["metrics"][str(newer.version)], result["metrics"][str(older.version)]
            out["paired"] = {
                "data_of_version": str(newer.version),
                "data": result["data"],
                "rows": result["rows"],
                "newer": str(newer.version),
                "older": str(older.version),
                str(newer.version): {k: new_m[k] for k in r.KEY_METRICS},
                str(older.version): {k: old_m[k] for k in r.KEY_METRICS},
                "pr_auc_difference": result["pr_auc_difference"],
            }
    return out
