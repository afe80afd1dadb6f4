"""MLflow tracking plumbing for every job that logs or reads runs: client, experiment, tags, downloads.

Why below training and the registry: the training job logs runs, evaluation reads them and the registry
registers them; all three need the same client bound to the config's store.

Robustness rules (issue 16):
- **Each config talks to its own store.** ``setup_tracking`` returns a client bound to the config's URI and
  leaves MLflow's process-wide URI alone (``mlflow.set_tracking_uri`` exports ``MLFLOW_TRACKING_URI``, which
  a second config would then prefer); code that needs the fluent API wraps it in ``use_tracking(config)``,
  which restores the previous URI and environment afterwards.
- **Bounded failures.** A tracking server is checked for reachability with ``registry.connect_timeout_seconds``
  per attempt and ``registry.max_retries`` retries, so an unreachable server fails in seconds naming its URI;
  MLflow's own HTTP retries get the same budget (``MLFLOW_HTTP_REQUEST_*``, unless the user exported them).
- **One creator.** A fresh SQLite store is created (its schema migrated) under a file lock, so processes
  opening it at once do not race MLflow's migrations; ``store_lock`` serialises alias moves the same way.

Why one file over 400 lines: every job reaches MLflow through these few functions, and the store rules above
(one client per config, bounded retries, one creator, relocated artifact URIs) only hold if they live together.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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


# MLflow's HTTP client budget -> the registry.* key that sets it (unless the user exported the variable).
HTTP_BUDGET_ENV = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "request_timeout_seconds",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "max_retries",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "retry_backoff_seconds",
}
_user_http_env: frozenset[str] | None = None  # budget variables exported before we first set any
_ready_stores: set[str] = set()  # URIs this process has opened (created, checked reachable)


def redact_uri(uri: str) -> str:
    """The URI without its password, for messages and logs."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other stores)."""
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


def apply_http_budget(config: Config) -> None:
    """Give MLflow's HTTP client the config's timeout and retry budget.

    MLflow reads these only from the environment (at each request); a variable the user exported before
    the first call is left as it is, so an operator can still override the config.
    """
    global _user_http_env
    if _user_http_env is None:
        _user_http_env = frozenset(name for name in HTTP_BUDGET_ENV if name in os.environ)
    for name, key in HTTP_BUDGET_ENV.items():
        if name not in _user_http_env:
            os.environ[name] = str(int(getattr(config.registry, key)))


def check_reachable(config: Config) -> None:
    """Fail in seconds, naming the URI, when a tracking server does not answer (http/https URIs only)."""
    uri = config.tracking_uri
    if not uri.startswith(("http://", "https://")):
        return
    import requests

    registry = config.registry
    attempts, started, last = registry.max_retries + 1, time.monotonic(), None
    for attempt in range(attempts):
        try:
            # any HTTP answer (even 401/404 from a proxy) means a server is there; only the transport can fail
            requests.get(
                uri.rstrip("/") + "/health",
                timeout=(registry.connect_timeout_seconds, registry.connect_timeout_seconds),
            )
            return
        except requests.exceptions.SSLError:
            return  # a server answered the TLS handshake; MLflow's own TLS settings (MLFLOW_TRACKING_INSECURE_TLS) decide
        except requests.exceptions.RequestException as exc:
            last = exc
            if attempt + 1 < attempts:
                time.sleep(registry.retry_backoff_seconds * 2**attempt)
    raise RegistryUnavailableError(
        f"MLflow registry unreachable at {redact_uri(uri)}: {attempts} attempt(s) in {time.monotonic() - started:.1f} s "
        f"failed ({type(last).__name__}); check MLFLOW_TRACKING_URI / registry.tracking_uri and that the server is up"
    )


@contextlib.contextmanager
def store_lock(config: Config, purpose: str) -> Iterator[None]:
    """Serialise ``purpose`` across processes sharing the config's SQLite store (no-op for other stores).

    A file lock next to the database (``mlflow.db.<purpose>.lock``); it dies with its process.
    """
    path = sqlite_path(config.tracking_uri)
    if path is None:
        yield
        return
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(f"{path}.{purpose}.lock", timeout=config.registry.lock_timeout_seconds)
    try:
        lock.acquire()
    except Timeout as exc:
        raise RegistryUnavailableError(
            f"MLflow store {path}: lock {lock.lock_file} still held after {config.registry.lock_timeout_seconds:g} s "
            "(another churn process is using the store); retry when it has finished"
        ) from exc
    try:
        yield
    finally:
        lock.release()


def setup_tracking(config: Config):
    """A client bound to the config's store, without touching MLflow's process-wide tracking URI.

    The first open of a store in this process checks a server's reachability, or creates a SQLite store
    under ``store_lock`` (MLflow migrates a new database's schema when the client is built).
    """
    import mlflow

    uri = config.tracking_uri
    apply_http_budget(config)
    if uri in _ready_stores:
        return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    check_reachable(config)
    with store_lock(config, "create"):
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_registered_models(max_results=1)  # the registry store too: same database, same migrations
        relocate_artifact_uris(config)
    _ready_stores.add(uri)
    return client


# Columns of MLflow's SQL schema (3.x) that hold artifact URIs copied from the experiment's artifact root.
ARTIFACT_URI_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
)


def portable_path(path: str | os.PathLike) -> str:
    """``path`` relative to the project root when it lies inside it (what a run tag stores, so a moved
    checkout still finds its files: read it back with ``config.resolve_path``), else absolute."""
    absolute = Path(path).resolve()
    try:
        return absolute.relative_to(PROJECT_ROOT.resolve()).as_posix()
    except ValueError:
        return str(absolute)


def relocate_artifact_uris(config: Config, root: Path = PROJECT_ROOT) -> int:
    """Point a moved or copied checkout's SQLite store at its own artifacts; returns the rows rewritten.

    Why: MLflow stores artifact locations absolute (``create_experiment`` resolves a relative one against
    the working directory, and every run, logged model and model version copies it), so a checkout moved
    to another folder would look for its artifacts in the old one, and a copy would silently read and
    write the original's. Only for the layout where both move together: a SQLite store inside the project
    and a relative ``registry.artifact_location``. An experiment whose location is
    ``file://<elsewhere>/<artifact_location>`` then has that prefix replaced, in every column above, by
    this checkout's ``file://<root>/<artifact_location>`` (one transaction, under the store's creation
    lock). Other stores (a server, an absolute or remote artifact root) are left alone. ``root``: the
    checkout (tests move a temporary one).
    """
    import sqlite3

    db = sqlite_path(config.tracking_uri)
    raw = str(config.registry.artifact_location)
    if db is None or not db.exists() or "://" in raw or Path(raw).is_absolute():
        return 0
    try:
        db.resolve().relative_to(root.resolve())
    except ValueError:
        return 0  # the store is not part of this checkout
    here = Path(os.path.normpath(root.resolve() / raw)).as_uri()
    suffix = "/" + Path(raw).as_posix().strip("/")
    with contextlib.closing(sqlite3.connect(db)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "experiments" not in tables:
            return 0
        old_roots = {
            loc
            for (loc,) in conn.execute("SELECT artifact_location FROM experiments")
            if loc and loc.startswith("file://") and loc.rstrip("/").endswith(suffix) and loc.rstrip("/") != here
        }
        changed = 0
        with conn:  # one transaction
            for old in sorted(old_roots):
                old = old.rstrip("/")
                for table, column in ARTIFACT_URI_COLUMNS:
                    if table not in tables:
                        continue
                    cursor = conn.execute(
                        f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                        f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                        (here, len(old) + 1, old, len(old) + 1, old + "/"),
                    )
                    changed += cursor.rowcount
    if changed:
        logger.warning(
            "MLflow store %s was moved: %d artifact URI(s) now point at %s (were under %s)",
            db,
            changed,
            here,
            ", ".join(sorted(old_roots)),
        )
    return changed


def client_for(config: Config):
    """A client on the configured registry; turns connection failures into RegistryUnavailableError."""
    try:
        return setup_tracking(config)
    except RegistryUnavailableError:
        raise
    except Exception as exc:
        raise RegistryUnavailableError(
            f"MLflow registry at {redact_uri(config.tracking_uri)} cannot be opened: {' '.join(str(exc).split())[:300]}"
        ) from exc


@contextlib.contextmanager
def use_tracking(config: Config) -> Iterator[Any]:
    """Bind MLflow's fluent API (``mlflow.start_run``, ``log_*``, ``register_model``) to the config's store
    for the block, then restore the process's previous URIs and ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI``.

    Yields the config's client. Not for concurrent use by threads with different configs (the fluent API
    is process-wide by design); everything else should use the client.
    """
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    import mlflow

    client = setup_tracking(config)
    uri = config.tracking_uri
    saved_env = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    saved_uris = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield client
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved_uris
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


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


def load_version_artifact(config: Config, model_version: str, artifact: str, load, prefix: str = "churn-artifact-"):
    """``load(local folder)`` of the ``artifact`` folder logged with a registered version's training run.

    Downloaded into a temporary folder that is removed once ``load`` returns, so ``load`` must read everything it
    needs (segment models, sentiment heads: small safetensors + JSON).
    """
    import tempfile

    client = setup_tracking(config)
    mv = client.get_model_version(config.registry.model_name, str(model_version))
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        return load(download_run_artifact(client, mv.run_id, artifact, Path(tmp)))


def download_model_bundle(model_uri: str, dst: Path, tracking_uri: str | None = None) -> Path:
    """Download a logged model / model version (``models:/m-<id>`` or ``models:/<name>/<version>``) into
    ``dst`` and return its bundle directory. The model directory is the bundle plus a few small metadata
    files, so downloading it whole costs nothing extra.

    With ``tracking_uri``, the ``models:/`` URI is resolved through that store's client: MLflow's own
    resolution always asks the process-wide registry URI, which this module leaves alone.
    """
    import mlflow

    dst.mkdir(parents=True, exist_ok=True)
    source = model_uri
    if tracking_uri and model_uri.startswith("models:/"):
        client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        ref = model_uri[len("models:/") :].strip("/")
        if "/" in ref:
            name, version = ref.split("/", 1)
            source = client.get_model_version_download_uri(name, version)
        else:
            source = client.get_logged_model(ref).artifact_location
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dst), tracking_uri=tracking_uri))
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
        local = download_model_bundle(model_uri, staging, config.tracking_uri)
        try:
            local.rename(target)
        except OSError:  # another process won the race
            if not (target / "bundle.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
