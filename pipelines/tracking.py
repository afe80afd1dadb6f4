"""MLflow tracking plumbing for every job that logs or reads runs: client, experiment, tags, downloads.

Why below training and the registry: the training job logs runs, evaluation reads them and the registry
registers them; all three need the same client bound to the config's store.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from pipelines.config import PROJECT_ROOT, Config
from pipelines.contract import ExitCode

logger = logging.getLogger(__name__)


class RegistryUnavailableError(RuntimeError):
    """The tracking / registry server cannot be reached."""

    exit_code = ExitCode.REGISTRY


# Run tags (the contract between train_and_log, evaluate_run, register_candidate and the gate).
TAG_MANIFEST = "manifest_path"
TAG_AS_OF = "as_of"
TAG_KIND = "candidate_kind"
TAG_OTHER_KIND = "other_candidate_kind"
TAG_MODEL_ID = "model_id"
TAG_GIT_COMMIT = "git_commit"
TAG_BEAT_BASELINE = "transformer_beat_baseline"
MODEL_NAME_IN_RUN = "model"
BUNDLE_ARTIFACT = "bundle"  # key in the pyfunc artifacts (its path inside the model is in MLmodel)
CANDIDATES_DIR = "candidates"  # run artifact folder holding the non-chosen candidate's bundle
REFERENCE_PATH = "reference/reference.parquet"
PACKAGES = ("torch", "transformers", "mlflow", "lightgbm", "pandas", "numpy", "scikit-learn", "safetensors")


def setup_tracking(config: Config):
    """Point the fluent API at the configured store and return a client bound to it."""
    import mlflow

    uri = config.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def client_for(config: Config):
    """A client on the configured registry; turns connection failures into RegistryUnavailableError."""
    try:
        return setup_tracking(config)
    except Exception as exc:  # pragma: no cover - depends on the server
        raise RegistryUnavailableError(f"MLflow registry at {config.tracking_uri} is unreachable: {exc}") from exc


class RunNotFoundError(LookupError):
    """The MLflow run id is unknown to the configured store."""

    exit_code = ExitCode.REGISTRY


def get_run(client, run_id: str):
    """The run, or RunNotFoundError naming it (instead of MLflow's own exception)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        raise RunNotFoundError(f"MLflow run {run_id!r} not found: {exc.message}") from exc


def ensure_experiment(config: Config, client) -> str:
    """Experiment id of ``registry.experiment``, created with the configured artifact root if new."""
    from mlflow.exceptions import MlflowException

    name = config.registry.experiment
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        raw = str(config.registry.artifact_location)
        if "://" in raw:
            artifact_location = raw  # explicit remote store (s3://, gs://, mlflow-artifacts:/...)
        elif config.tracking_uri.startswith(("http://", "https://", "databricks")):
            artifact_location = None  # a tracking server decides (its proxied artifact store)
        else:
            location = config.resolve_path(raw)
            location.mkdir(parents=True, exist_ok=True)
            artifact_location = location.as_uri()
        try:
            return client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException:  # created concurrently by another task
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def flatten(mapping: dict, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists become JSON strings."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        elif isinstance(value, list | tuple | dict):
            out[name] = json.dumps(value, default=str)
        else:
            out[name] = value
    return out


def git_commit() -> str | None:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except Exception:
        return None


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def download_run_artifact(client, run_id: str, path: str, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, path, str(dst)))


def download_model_bundle(model_uri: str, dst: Path) -> Path:
    """Download a logged model / model version (``models:/m-<id>`` or ``models:/<name>/<version>``) into
    ``dst`` and return its bundle directory. The model directory is the bundle plus a few small metadata
    files, so downloading it whole costs nothing extra."""
    import mlflow

    dst.mkdir(parents=True, exist_ok=True)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(dst)))
    return bundle_dir_of(local, model_uri)


def bundle_dir_of(model_dir: Path, what: str = "") -> Path:
    """The bundle directory inside a downloaded pyfunc model, as recorded in its MLmodel file."""
    import yaml

    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    artifacts = mlmodel.get("flavors", {}).get("python_function", {}).get("artifacts") or {}
    entry = artifacts.get(BUNDLE_ARTIFACT)
    bundle = model_dir / entry["path"] if entry else None
    if bundle is None or not bundle.is_dir():
        raise FileNotFoundError(f"{what or model_dir} has no {BUNDLE_ARTIFACT!r} artifact (not a churn model?)")
    return bundle


def cached_model_bundle(config: Config, model_uri: str, key: str, cache_dir: str | Path | None = None) -> Path:
    """The bundle of an immutable model version, downloaded once into a local cache (atomic rename)."""
    root = Path(cache_dir) if cache_dir else config.resolve_path(config.dataset.output_dir).parent / "models"
    target = root / key / BUNDLE_ARTIFACT
    if (target / "bundle.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    try:
        local = download_model_bundle(model_uri, staging)
        try:
            local.rename(target)
        except OSError:  # another process won the race
            if not (target / "bundle.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
