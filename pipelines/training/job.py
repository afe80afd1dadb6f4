"""The training job: fit every candidate on a manifest's training sets and log one MLflow run.

``train_and_log`` logs the chosen candidate as a pyfunc model (models from code: no pickles), every other
candidate's bundle as a run artifact, the config, dataset lineage, per-epoch curves and the drift reference,
so the evaluation job and the registry need nothing but the run id.
"""

from __future__ import annotations

import logging
import math
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
from pipelines.contract import CUTOFF_COLUMN, ID_COLUMN, LABEL_COLUMN, PROBABILITY_COLUMN, SEGMENT_COLUMNS, TEXT_COLUMN
from pipelines.datasets import TrainingSets, drift_reference_sample, load_training_sets
from pipelines.features.privacy import pseudonym_key, pseudonymise_frame
from pipelines.models import ChurnPredictor
from pipelines.training.fit import ENCODER_KINDS, CandidateResult, fit_candidates, lost_to_baseline_note
from pipelines.training.segments import log_segments
from pipelines.training.sentiment import log_sentiment_head

logger = logging.getLogger(__name__)

PYFUNC_MODEL_FILE = Path(__file__).resolve().parent.parent / "models" / "pyfunc_model.py"
INPUT_EXAMPLE_ROWS = 3
NOTE_TAG = "mlflow.note.content"  # shown as the run description on the run page


def finite_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The numeric, finite entries of a metrics dict (MLflow refuses NaN in some stores; bools are not metrics)."""
    out = {}
    for key, value in metrics.items():
        is_number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
        if is_number and math.isfinite(float(value)):
            out[key] = float(value)
    return out


def model_input(frame: pd.DataFrame, feature_names: list[str]) -> pd.DataFrame:
    """The columns the pyfunc model takes: id, numeric features, text view."""
    columns = [c for c in (ID_COLUMN, *feature_names, TEXT_COLUMN) if c in frame.columns]
    return frame[columns]


def _split_lineage(frame: pd.DataFrame) -> dict[str, Any]:
    info: dict[str, Any] = {"rows": len(frame)}
    if LABEL_COLUMN in frame.columns and len(frame):
        info["churn_rate"] = round(float(frame[LABEL_COLUMN].mean()), 6)
    if CUTOFF_COLUMN in frame.columns:
        info["cutoffs"] = ",".join(str(pd.Timestamp(c).date()) for c in sorted(frame[CUTOFF_COLUMN].dropna().unique()))
    if ID_COLUMN in frame.columns:
        info["customers"] = int(frame[ID_COLUMN].nunique())
    return info


def _manifest_hashes(manifest: dict) -> dict[str, str]:
    """Every sha256/digest leaf of the manifest, flattened (e.g. ``splits.train.sha256``)."""
    return {
        k: str(v)
        for k, v in t.flatten(manifest).items()
        if any(word in k.lower() for word in ("sha", "digest", "hash")) and isinstance(v, str)
    }


def _pip_requirements() -> list[str]:
    """Pinned requirements of the logged model (given explicitly so MLflow does not re-import the model)."""
    return [f"{name}=={version}" for name, version in t.package_versions().items()]


def train_and_log(config: Config, manifest_path: str) -> str:
    """Fit every candidate on the manifest's training sets and log everything to one MLflow run; return its id."""
    import mlflow

    sets = load_training_sets(str(Path(manifest_path).resolve()))
    manifest_path = t.portable_path(manifest_path)  # the run's tag: relative inside the checkout
    as_of = str(sets.manifest.get("as_of", ""))
    client = t.setup_tracking(config)
    experiment_id = t.ensure_experiment(config, client)

    with (
        t.use_tracking(config),  # the fluent API below, bound to this config's store for the run only
        mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{as_of}" if as_of else None) as run,
    ):
        run_id = run.info.run_id
        _log_context(config, sets, manifest_path, as_of)
        curves = _EpochLogger(client, run_id)
        with tempfile.TemporaryDirectory(prefix="churn-fit-") as workdir:
            fit = fit_candidates(config, sets, Path(workdir), on_epoch_end=curves)
            for kind, candidate in fit.candidates.items():  # history the callback did not deliver
                for i, row in enumerate(candidate.history):
                    curves(kind, int(row.get("epoch", i + 1)), row)
            curves.flush()
            chosen = fit.candidates[fit.chosen]
            others = [kind for kind in fit.candidates if kind != fit.chosen]
            _log_candidates(fit.candidates, fit.chosen, fit.notes)
            predictor = chosen.predictor or _load(chosen.bundle_dir)
            model_id = _log_pyfunc_model(
                sets.train,
                list(predictor.feature_names),
                predictor,
                chosen.bundle_dir,
                fit.chosen,
                pseudonym_key(config),
            )
            for kind in others:
                mlflow.log_artifacts(str(fit.candidates[kind].bundle_dir), artifact_path=f"{t.CANDIDATES_DIR}/{kind}")
            _log_reference(config, sets, list(predictor.feature_names), predictor)
            log_segments(config, sets, predictor)  # customer segments, stored with the run (segments/)
            log_sentiment_head(config, sets)  # the head behind the sentiment_* features, for scoring (sentiment/)
            mlflow.set_tags({t.TAG_KIND: fit.chosen, t.TAG_OTHER_KIND: ",".join(others), t.TAG_MODEL_ID: model_id})
        logger.info("run %s: logged %s candidate (model %s)", run_id, fit.chosen, model_id)
    return run_id


def _load(bundle_dir: Path) -> ChurnPredictor:
    from pipelines.models import load_bundle

    return load_bundle(str(bundle_dir))


def _log_context(config: Config, sets: TrainingSets, manifest_path: str, as_of: str) -> None:
    import mlflow

    manifest = sets.manifest
    resolved = config.model_dump(mode="json")
    mlflow.log_params({k: ("" if v is None else v) for k, v in t.flatten(resolved).items()})
    mlflow.log_text(yaml.safe_dump(resolved, sort_keys=False), "config/config.yaml")
    mlflow.log_dict(manifest, "dataset/manifest.json")

    features = sets.feature_names
    mlflow.log_dict({"numeric_features": features, "text_column": TEXT_COLUMN}, "features/feature_names.json")
    mlflow.log_param("n_features", len(features))

    lineage_params: dict[str, Any] = {}
    for split in ("train", "validation", "test"):
        for key, value in _split_lineage(sets.split(split)).items():
            lineage_params[f"dataset.{split}.{key}"] = value
    mlflow.log_params(lineage_params)
    for split in ("train", "validation", "test"):
        frame = sets.split(split)
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


def _log_inputs(sets: TrainingSets, manifest_path: str, as_of: str) -> None:
    """Dataset lineage in the run's "Datasets used" panel (schema, digest, source = manifest)."""
    import mlflow

    for split, context in (("train", "training"), ("validation", "validation"), ("test", "testing")):
        frame = sets.split(split)
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
        rows = [
            Metric(f"{kind}_epoch_{k}", v, now, int(epoch)) for k, v in finite_metrics(metrics).items() if k != "epoch"
        ]
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


def _log_candidates(candidates: dict[str, CandidateResult], chosen: str, notes: list[str]) -> None:
    """Every candidate's calibrated validation metrics (``<kind>_val_<metric>``), the choice and its notes."""
    import mlflow

    metrics: dict[str, float] = {}
    summary: dict[str, Any] = {"chosen": chosen, "candidates": {}}
    for kind, candidate in candidates.items():
        val = finite_metrics(candidate.validation_metrics)
        metrics.update({f"{kind}_val_{k}": v for k, v in val.items()})
        metrics[f"{kind}_best_epoch"] = float(candidate.best_epoch)
        metrics[f"{kind}_train_seconds"] = float(candidate.seconds)
        summary["candidates"][kind] = {
            "validation": val,
            "best_epoch": candidate.best_epoch,
            "seconds": candidate.seconds,
        }
    metrics.update({f"val_{k}": v for k, v in finite_metrics(candidates[chosen].validation_metrics).items()})
    mlflow.log_metrics(metrics)

    pr_auc = {kind: c.validation_metrics.get("pr_auc", math.nan) for kind, c in candidates.items()}
    tags: dict[str, str] = {}
    encoder_kinds = [kind for kind in ENCODER_KINDS if kind in pr_auc]
    if encoder_kinds and "baseline" in pr_auc:
        known = all(math.isfinite(pr_auc[kind]) for kind in (*encoder_kinds, "baseline"))
        lost = lost_to_baseline_note(pr_auc)
        # true when a candidate with the fine-tuned encoder (transformer or hybrid) beat the baseline
        tags[t.TAG_BEAT_BASELINE] = str(lost is None).lower() if known else "unknown"
        if lost and lost not in notes:
            notes = [lost, *notes]
    description = [
        f"Chosen candidate: **{chosen}**.",
        "Validation PR-AUC: " + ", ".join(f"{kind} {value:.4f}" for kind, value in pr_auc.items()) + ".",
    ]
    summary["notes"] = notes
    if notes:
        mlflow.log_text("\n".join(notes) + "\n", "notes.txt")
        tags["notes"] = " | ".join(notes)[:5000]
        description += ["", "Notes:", *[f"- {n}" for n in notes]]
        for note in notes:
            logger.warning("training note: %s", note)
    tags[NOTE_TAG] = "\n".join(description)
    mlflow.set_tags(tags)
    mlflow.log_dict(summary, "candidates/summary.json")


def _log_pyfunc_model(
    train: pd.DataFrame, features: list[str], predictor: ChurnPredictor, bundle_dir: Path, kind: str, key: bytes
) -> str:
    """Log the chosen bundle as pyfunc model ``model`` (models from code) and return its model id.

    The input example's customer ids are pseudonymised (``key``): it is stored in the model's artifacts.
    """
    from mlflow.models import infer_signature

    import mlflow

    example = model_input(train.head(INPUT_EXAMPLE_ROWS), features).reset_index(drop=True)
    example = pseudonymise_frame(example, key, ID_COLUMN)
    output = pd.DataFrame({PROBABILITY_COLUMN: predictor.predict_proba(example)})
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


def _log_reference(config: Config, sets: TrainingSets, features: list[str], predictor: ChurnPredictor) -> None:
    """The drift monitor's reference: :func:`pipelines.datasets.drift_reference_sample` rows with the model's predictions.

    Logged as ``reference/reference.parquet`` with the pseudonymised id, cutoff, numeric features, text view, segments,
    label and ``prediction`` (the chosen candidate's calibrated probability).
    """
    import mlflow

    sample = drift_reference_sample(config, sets)
    keep = [
        c
        for c in (ID_COLUMN, CUTOFF_COLUMN, *features, TEXT_COLUMN, *SEGMENT_COLUMNS, LABEL_COLUMN)
        if c in sample.columns
    ]
    reference = sample[keep].reset_index(drop=True)
    reference["prediction"] = predictor.predict_proba(reference)
    reference = pseudonymise_frame(reference, pseudonym_key(config), ID_COLUMN)  # no raw ids in MLflow
    with tempfile.TemporaryDirectory(prefix="churn-ref-") as tmp:
        path = Path(tmp) / Path(t.REFERENCE_PATH).name
        reference.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=str(Path(t.REFERENCE_PATH).parent))
