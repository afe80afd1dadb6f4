"""Training and evaluation runs: one MLflow run per training job, holding both candidates.

``train_and_log`` fits the transformer and the LightGBM baseline, logs the chosen one as a pyfunc
model (models from code: no pickles) and the other as a plain artifact; ``evaluate_run`` scores both
on the held-out test split of the same run, so the run page shows them side by side.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from pipelines import tracking as t
from pipelines.config import Config
from pipelines.features.privacy import pseudonym_key, pseudonymise_frame
from pipelines.registry.errors import RegistryError

logger = logging.getLogger(__name__)

PYFUNC_MODEL_FILE = Path(__file__).with_name("pyfunc_model.py")
KINDS = ("transformer", "baseline")
KEY_METRICS = ("pr_auc", "roc_auc", "brier")
INPUT_EXAMPLE_ROWS = 3
NOTE_TAG = "mlflow.note.content"  # shown as the run description on the run page

# Column names from the architecture contract (pipelines.features); repeated here so the registry
# does not import the feature SQL layer just for constants.
ID_COLUMN, CUTOFF_COLUMN, TEXT_COLUMN, LABEL_COLUMN = "customer_id", "cutoff_date", "text_view", "churned"
SEGMENT_COLUMNS = ("tenure_band", "acquisition_channel")


# ----------------------------------------------------------------------------------------------
# small adapters over the training / dataset results
# ----------------------------------------------------------------------------------------------


def candidate_metrics(candidate) -> dict[str, float]:
    """Validation metrics of a CandidateResult, keys without a ``val_`` prefix."""
    for attr in ("validation", "validation_metrics", "val_metrics", "metrics"):
        value = getattr(candidate, attr, None)
        if isinstance(value, dict):
            break
    else:
        value = {}
    out = {}
    for key, metric in value.items():
        key = str(key)
        for prefix in ("validation_", "val_"):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        if _is_number(metric):
            out[key] = float(metric)
    return out


def feature_names_of(sets, predictor=None) -> list[str]:
    names = getattr(sets, "feature_names", None)
    if not names and predictor is not None:
        names = predictor.feature_names
    if not names:
        from pipelines.features import numeric_feature_names  # pragma: no cover - fallback only

        names = numeric_feature_names(Config())
    return list(names)


def model_input(frame: pd.DataFrame, feature_names: list[str]) -> pd.DataFrame:
    """The columns the pyfunc model takes: id, numeric features, text view."""
    columns = [c for c in (ID_COLUMN, *feature_names, TEXT_COLUMN) if c in frame.columns]
    return frame[columns]


def _is_number(value) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _finite(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if _is_number(v) and math.isfinite(float(v))}


def _split_lineage(name: str, frame: pd.DataFrame) -> dict[str, Any]:
    info: dict[str, Any] = {"rows": len(frame)}
    if LABEL_COLUMN in frame.columns and len(frame):
        info["churn_rate"] = round(float(frame[LABEL_COLUMN].mean()), 6)
    if CUTOFF_COLUMN in frame.columns:
        info["cutoffs"] = ",".join(str(pd.Timestamp(c).date()) for c in sorted(frame[CUTOFF_COLUMN].dropna().unique()))
    if ID_COLUMN in frame.columns:
        info["customers"] = int(frame[ID_COLUMN].nunique())
    return info


def _manifest_hashes(manifest: dict) -> dict[str, str]:
    """Every sha256/digest leaf of the manifest, flattened (e.g. ``files.train.sha256``)."""
    return {
        k: str(v)
        for k, v in t.flatten(manifest).items()
        if any(word in k.lower() for word in ("sha", "digest", "hash")) and isinstance(v, str)
    }


def _load_bundle(path: str | Path, **options):
    from pipelines.models import load_bundle

    return load_bundle(str(path), **options)


def _predict(predictor, frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(predictor.predict_proba(frame), dtype=np.float64).reshape(-1)


def _pip_requirements() -> list[str]:
    """Pinned requirements of the logged model (given explicitly so MLflow does not re-import the model)."""
    return [f"{name}=={version}" for name, version in t.package_versions().items()]


# ----------------------------------------------------------------------------------------------
# train_and_log
# ----------------------------------------------------------------------------------------------


def train_and_log(config: Config, manifest_path: str) -> str:
    """Fit both candidates on the manifest's training sets and log everything to one MLflow run."""
    import mlflow
    from pipelines.datasets import load_training_sets
    from pipelines.training import fit_candidates

    manifest_path = str(Path(manifest_path).resolve())
    sets = load_training_sets(manifest_path)
    manifest = dict(getattr(sets, "manifest", None) or {})
    as_of = str(manifest.get("as_of", ""))
    client = t.setup_tracking(config)
    experiment_id = t.ensure_experiment(config, client)

    run_name = f"train-{as_of}" if as_of else None
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        run_id = run.info.run_id
        _log_context(config, sets, manifest, manifest_path, as_of)

        curves = _EpochLogger(client, run_id)
        with tempfile.TemporaryDirectory(prefix="churn-fit-") as workdir:
            fit = fit_candidates(config, sets, Path(workdir), on_epoch_end=curves)
            candidates = {"transformer": fit.transformer, "baseline": fit.baseline}
            for kind, candidate in candidates.items():  # history the callback did not deliver
                for i, row in enumerate(getattr(candidate, "history", None) or []):
                    curves(kind, int(row.get("epoch", i + 1)), row)
            curves.flush()
            chosen = fit.chosen
            if chosen not in candidates:
                raise RegistryError(f"fit_candidates chose unknown candidate {chosen!r}")
            other = next(k for k in KINDS if k != chosen)
            _log_candidates(candidates, chosen, list(getattr(fit, "notes", None) or []))

            predictor = _load_bundle(candidates[chosen].bundle_dir)
            features = feature_names_of(sets, predictor)
            model_id = _log_pyfunc_model(
                sets.train,
                list(predictor.feature_names),
                predictor,
                candidates[chosen].bundle_dir,
                chosen,
                pseudonym_key(config),
            )
            mlflow.log_artifacts(str(candidates[other].bundle_dir), artifact_path=f"{t.CANDIDATES_DIR}/{other}")
            _log_reference(config, sets, features, predictor)
            mlflow.set_tags({t.TAG_KIND: chosen, t.TAG_OTHER_KIND: other, t.TAG_MODEL_ID: model_id})
        logger.info("run %s: logged %s candidate (model %s)", run_id, chosen, model_id)
    return run_id


def _log_context(config: Config, sets, manifest: dict, manifest_path: str, as_of: str) -> None:
    import mlflow

    resolved = config.model_dump(mode="json")
    mlflow.log_params({k: ("" if v is None else v) for k, v in t.flatten(resolved).items()})
    mlflow.log_text(yaml.safe_dump(resolved, sort_keys=False), "config/config.yaml")
    mlflow.log_dict(manifest, "dataset/manifest.json")

    features = list(getattr(sets, "feature_names", None) or [])
    if features:
        mlflow.log_dict({"numeric_features": features, "text_column": TEXT_COLUMN}, "features/feature_names.json")
        mlflow.log_param("n_features", len(features))

    lineage_params: dict[str, Any] = {}
    for split in ("train", "validation", "test"):
        for key, value in _split_lineage(split, getattr(sets, split)).items():
            lineage_params[f"dataset.{split}.{key}"] = value
    mlflow.log_params(lineage_params)
    for split in ("train", "validation", "test"):
        frame = getattr(sets, split)
        mlflow.log_metric(f"dataset_{split}_rows", float(len(frame)))
        if LABEL_COLUMN in frame.columns and len(frame):
            mlflow.log_metric(f"dataset_{split}_churn_rate", float(frame[LABEL_COLUMN].mean()))

    tags = {t.TAG_MANIFEST: manifest_path, t.TAG_AS_OF: as_of, "run_type": "training"}
    tags.update({f"dataset.{k}"[:250]: v[:5000] for k, v in _manifest_hashes(manifest).items()})
    commit = t.git_commit()
    if commit:
        tags[t.TAG_GIT_COMMIT] = commit
    tags.update({f"version.{name}": version for name, version in t.package_versions().items()})
    mlflow.set_tags(tags)
    _log_inputs(sets, manifest_path, as_of)


def _log_inputs(sets, manifest_path: str, as_of: str) -> None:
    """Dataset lineage in the run's "Datasets used" panel (schema, digest, source = manifest)."""
    import mlflow

    for split, context in (("train", "training"), ("validation", "validation"), ("test", "testing")):
        frame = getattr(sets, split)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "source can be interpreted in multiple ways"
                dataset = mlflow.data.from_pandas(
                    frame,
                    source=manifest_path,
                    name=f"churn-{split}-{as_of}",
                    targets=LABEL_COLUMN if LABEL_COLUMN in frame.columns else None,
                )
            mlflow.log_input(dataset, context=context)
        except Exception as exc:  # lineage is also in params/tags; never fail a run over the panel
            logger.warning("could not log dataset input %s: %s", split, exc)


class _EpochLogger:
    """``on_epoch_end(kind, epoch, metrics)``: per-epoch curves ``<kind>_epoch_<metric>`` with step=epoch.

    Transformer epochs are logged as they finish (live curves in the UI); the baseline reports one row
    per boosting round, so its rows are buffered and written in batches. Final, calibrated validation
    metrics are logged separately as ``<kind>_val_<metric>``.
    """

    LIVE_KINDS = ("transformer",)
    BATCH = 900

    def __init__(self, client, run_id: str):
        self.client, self.run_id = client, run_id
        self.seen: set[tuple[str, int]] = set()
        self.buffer: list = []

    def __call__(self, kind: str, epoch: int, metrics: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        if (kind, int(epoch)) in self.seen:
            return
        self.seen.add((kind, int(epoch)))
        now = int(time.time() * 1000)
        rows = [Metric(f"{kind}_epoch_{k}", v, now, int(epoch)) for k, v in _finite(metrics).items() if k != "epoch"]
        self.buffer.extend(rows)
        if kind in self.LIVE_KINDS or len(self.buffer) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        while self.buffer:
            chunk, self.buffer = self.buffer[: self.BATCH], self.buffer[self.BATCH :]
            try:
                self.client.log_batch(self.run_id, metrics=chunk)
            except Exception as exc:  # curves are diagnostics: never fail training over them
                logger.warning("could not log per-epoch metrics: %s", exc)


def _log_candidates(candidates: dict, chosen: str, notes: list[str]) -> None:
    import mlflow

    metrics: dict[str, float] = {}
    summary: dict[str, Any] = {"chosen": chosen, "candidates": {}}
    for kind, candidate in candidates.items():
        val = _finite(candidate_metrics(candidate))
        metrics.update({f"{kind}_val_{k}": v for k, v in val.items()})
        if getattr(candidate, "best_epoch", None) is not None:
            metrics[f"{kind}_best_epoch"] = float(candidate.best_epoch)
        if getattr(candidate, "seconds", None) is not None:
            metrics[f"{kind}_train_seconds"] = float(candidate.seconds)
        summary["candidates"][kind] = {
            "validation": val,
            "best_epoch": getattr(candidate, "best_epoch", None),
            "seconds": getattr(candidate, "seconds", None),
        }
    metrics.update({f"val_{k}": v for k, v in _finite(candidate_metrics(candidates[chosen])).items()})
    mlflow.log_metrics(metrics)

    t_pr = candidate_metrics(candidates["transformer"]).get("pr_auc", math.nan)
    b_pr = candidate_metrics(candidates["baseline"]).get("pr_auc", math.nan)
    beat = bool(t_pr > b_pr) if math.isfinite(t_pr) and math.isfinite(b_pr) else None
    if beat is False and not any("did not beat" in note for note in notes):
        notes = [
            *notes,
            f"The transformer did not beat the LightGBM baseline on validation PR-AUC ({t_pr:.4f} vs {b_pr:.4f}).",
        ]
    notes = list(dict.fromkeys(notes))
    summary["notes"] = notes
    tags = {t.TAG_BEAT_BASELINE: "unknown" if beat is None else str(beat).lower()}
    description = [
        f"Chosen candidate: **{chosen}**.",
        f"Validation PR-AUC: transformer {t_pr:.4f}, baseline {b_pr:.4f}.",
    ]
    if notes:
        mlflow.log_text("\n".join(notes) + "\n", "notes.txt")
        tags["notes"] = " | ".join(notes)[:5000]
        description += ["", "Notes:", *[f"- {n}" for n in notes]]
        for note in notes:
            logger.warning("training note: %s", note)
    tags[NOTE_TAG] = "\n".join(description)
    mlflow.set_tags(tags)
    mlflow.log_dict(summary, "candidates/summary.json")


def _log_pyfunc_model(train: pd.DataFrame, features: list[str], predictor, bundle_dir, kind: str, key: bytes) -> str:
    """Log the chosen bundle as pyfunc model ``model`` (models from code) and return its model id.

    The input example's customer ids are pseudonymised (``key``): it is stored in the model's artifacts.
    """
    from mlflow.models import infer_signature

    import mlflow

    example = model_input(train.head(INPUT_EXAMPLE_ROWS), features).reset_index(drop=True)
    example = pseudonymise_frame(example, key, ID_COLUMN)
    output = pd.DataFrame({"churn_probability": _predict(predictor, example)})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*type hints.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*integer column.*", category=UserWarning)
        signature = infer_signature(example, output)
        info = mlflow.pyfunc.log_model(
            name=t.MODEL_NAME_IN_RUN,
            python_model=str(PYFUNC_MODEL_FILE),
            artifacts={t.BUNDLE_ARTIFACT: str(bundle_dir)},
            signature=signature,
            input_example=example,
            pip_requirements=_pip_requirements(),
            metadata={"candidate_kind": kind, "feature_names": features},
            tags={t.TAG_KIND: kind},
        )
    return info.model_id


def reference_sample(config: Config, train: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """The drift reference rows: the most recent fully observed cutoffs, not the training rows.

    Up to ``monitoring.reference_sample_rows`` rows of the test split (the latest cutoff(s) whose label
    horizon ``as_of`` fully observes), topped up from the validation split (its latest cutoffs first)
    when the test split is smaller. Why not a sample of the train split: with the default dataset
    settings the train cutoffs lie 5 to 10 months before ``as_of`` (the test cutoff ``horizon_days``
    = 3 months), so the monitor compared the scoring population with one up to a year older and
    flagged what merely changes with time (customers age, seasons, the population's mix) as drift on
    sample data without any injected change. The test split
    is as close to the scoring date as labelled rows can be, and it is the split the model's reported
    test metrics come from, so "no drift from the reference" means "the population the metrics were
    measured on". The train split is only used when both later splits are empty.
    """
    n = config.monitoring.reference_sample_rows
    seed = config.training.seed
    parts: list[pd.DataFrame] = []
    for split in (test, validation):
        need = n - sum(len(p) for p in parts)
        if need <= 0 or split is None or not len(split):
            continue
        if len(split) <= need:
            parts.append(split)
        elif CUTOFF_COLUMN in split.columns:  # whole latest cutoffs first, a seeded sample of the boundary one
            shuffled = split.iloc[np.random.default_rng(seed).permutation(len(split))]
            parts.append(shuffled.sort_values(CUTOFF_COLUMN, ascending=False, kind="stable").head(need))
        else:
            parts.append(split.sample(n=need, random_state=seed))
    if not parts:
        logger.warning("validation and test splits are empty: the drift reference is sampled from the train split")
        parts = [train.sample(n=n, random_state=seed) if n < len(train) else train]
    sample = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    if len(sample) < n:
        logger.info(
            "drift reference: %d rows (test + validation splits) < monitoring.reference_sample_rows %d", len(sample), n
        )
    return sample


def _log_reference(config: Config, sets, features: list[str], predictor) -> None:
    """The drift monitor's reference: :func:`reference_sample` rows with the model's predictions.

    Logged as ``reference/reference.parquet`` with the pseudonymised id, cutoff, numeric features, text view, segments,
    label and ``prediction`` (the chosen candidate's calibrated probability).
    """
    import mlflow

    sample = reference_sample(config, sets.train, sets.validation, sets.test)
    keep = [
        c
        for c in (ID_COLUMN, CUTOFF_COLUMN, *features, TEXT_COLUMN, *SEGMENT_COLUMNS, LABEL_COLUMN)
        if c in sample.columns
    ]
    reference = sample[keep].reset_index(drop=True)
    reference["prediction"] = _predict(predictor, reference)
    reference = pseudonymise_frame(reference, pseudonym_key(config), ID_COLUMN)  # no raw ids in MLflow
    with tempfile.TemporaryDirectory(prefix="churn-ref-") as tmp:
        path = Path(tmp) / Path(t.REFERENCE_PATH).name
        reference.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=str(Path(t.REFERENCE_PATH).parent))


# ----------------------------------------------------------------------------------------------
# evaluate_run
# ----------------------------------------------------------------------------------------------


def run_info(client, run_id: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        raise RegistryError(f"MLflow run {run_id!r} not found: {exc.message}") from exc


def run_bundles(client, run, workdir: Path) -> dict[str, Path]:
    """Local copies of the run's bundles: {chosen kind: logged model bundle, other kind: candidate artifact}."""
    tags = run.data.tags
    chosen, other, model_id = tags.get(t.TAG_KIND), tags.get(t.TAG_OTHER_KIND), tags.get(t.TAG_MODEL_ID)
    if not chosen or not model_id:
        raise RegistryError(f"run {run.info.run_id} has no logged model (was it made by train_and_log?)")
    bundles = {chosen: t.download_model_bundle(f"models:/{model_id}", workdir / chosen)}
    if other:
        try:
            bundles[other] = t.download_run_artifact(
                client, run.info.run_id, f"{t.CANDIDATES_DIR}/{other}", workdir / other
            )
        except Exception as exc:
            logger.warning("run %s: other candidate %s not available: %s", run.info.run_id, other, exc)
    return bundles


def evaluate_run(config: Config, run_id: str) -> dict:
    """Score both candidates of the run on its test split (threshold from validation); log and return metrics."""
    import mlflow
    from pipelines.datasets import load_training_sets
    from pipelines.evaluation import choose_threshold, compute_metrics, save_plots, segment_metrics

    client = t.setup_tracking(config)
    run = run_info(client, run_id)
    manifest_path = run.data.tags.get(t.TAG_MANIFEST)
    if not manifest_path:
        raise RegistryError(f"run {run_id} has no {t.TAG_MANIFEST!r} tag")
    sets = load_training_sets(manifest_path)
    chosen = run.data.tags[t.TAG_KIND]
    y_val = sets.validation[LABEL_COLUMN].to_numpy()
    y_test = sets.test[LABEL_COLUMN].to_numpy()

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="churn-eval-") as tmp, mlflow.start_run(run_id=run_id):
        workdir = Path(tmp)
        bundles = run_bundles(client, run, workdir)
        chosen_scores = None
        for kind, bundle in bundles.items():
            predictor = _load_bundle(bundle)
            threshold = choose_threshold(y_val, _predict(predictor, sets.validation))
            p_test = _predict(predictor, sets.test)
            metrics = compute_metrics(y_test, p_test, threshold=threshold)
            results[kind] = metrics
            mlflow.log_metrics({f"{kind}_test_{k}": v for k, v in _finite(metrics).items()})
            if kind == chosen:
                chosen_scores = p_test
            del predictor

        test_metrics = results[chosen]
        mlflow.log_metrics({f"test_{k}": v for k, v in _finite(test_metrics).items()})
        mlflow.log_dict({"chosen": chosen, "test": results}, "evaluation/test_metrics.json")

        segments_columns = [c for c in SEGMENT_COLUMNS if c in sets.test.columns]
        if segments_columns:
            segments = segment_metrics(sets.test, chosen_scores, segments_columns)
            seg_frame = segments if isinstance(segments, pd.DataFrame) else pd.DataFrame(segments)
            seg_path = workdir / "segment_metrics.csv"
            seg_frame.to_csv(seg_path, index=False)
            mlflow.log_artifact(str(seg_path), artifact_path="evaluation")
            mlflow.log_text(
                seg_frame.to_json(orient="records", indent=1, default_handler=str), "evaluation/segment_metrics.json"
            )

        plots_dir = workdir / "plots"
        plots_dir.mkdir()
        for plot in save_plots(y_test, chosen_scores, plots_dir) or []:
            mlflow.log_artifact(str(plot), artifact_path="plots")
        shutil.rmtree(plots_dir, ignore_errors=True)
    logger.info(
        "run %s: test %s", run_id, {k: round(v, 4) for k, v in _finite(test_metrics).items() if k in KEY_METRICS}
    )
    return {k: (float(v) if _is_number(v) else v) for k, v in test_metrics.items()}


def summary_table(config: Config, run_id: str) -> list[dict[str, Any]]:
    """Rows (candidate, split, pr_auc, roc_auc, brier, ...) of a run, for the CLI summary."""
    client = t.setup_tracking(config)
    run = run_info(client, run_id)
    metrics = run.data.metrics
    rows = []
    chosen = run.data.tags.get(t.TAG_KIND)
    for kind in KINDS:
        for split, prefix in (("validation", f"{kind}_val_"), ("test", f"{kind}_test_")):
            values = {k[len(prefix) :]: v for k, v in metrics.items() if k.startswith(prefix)}
            if values:
                rows.append({"candidate": kind + (" *" if kind == chosen else ""), "split": split, **values})
    return rows


def read_json_artifact(client, run_id: str, path: str) -> dict | None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, path, tmp)
        except Exception:
            return None
        return json.loads(Path(local).read_text())
