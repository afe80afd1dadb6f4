"""A real MLflow registry (temp SQLite) over small synthetic training sets and real LightGBM bundles.

The ML part is replaced by ``fake_fit_candidates``: it trains tiny LightGBM boosters of a chosen
quality ("good" uses the signal features, "weak" one of them, "bad" only noise) and writes them as
real pickle-free baseline bundles with ``pipelines.models.save_baseline_bundle``. Everything else
(datasets manifest, bundles, MLflow runs, registry, aliases) is the real code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import tracking

FEATURES = ["f_signal_a", "f_signal_b", "f_noise"]
QUALITY_FEATURES = {"good": ["f_signal_a", "f_signal_b"], "weak": ["f_signal_b"], "bad": ["f_noise"]}
SPLIT_ROWS = {"train": 1200, "validation": 800, "test": 1500}
SPLIT_CUTOFFS = {"train": ["2025-01-01", "2025-02-01"], "validation": ["2025-03-01"], "test": ["2025-04-01"]}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _split_frame(rng: np.random.Generator, name: str, n: int) -> pd.DataFrame:
    a, b, noise = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    p = 1 / (1 + np.exp(-(2.0 * a - 1.5 * b - 0.8)))
    cutoffs = SPLIT_CUTOFFS[name]
    return pd.DataFrame(
        {
            "customer_id": np.arange(n, dtype=np.int64) + 1,
            "cutoff_date": [dt.date.fromisoformat(cutoffs[i % len(cutoffs)]) for i in range(n)],
            "f_signal_a": a,
            "f_signal_b": b,
            "f_noise": noise,
            "text_view": [f"order {i % 7} shoes; review {i % 5} stars" for i in range(n)],
            "tenure_band": np.where(a > 0, "1y+", "<1y"),
            "acquisition_channel": np.where(noise > 0, "organic", "paid_search"),
            "churned": (rng.random(n) < p).astype(np.int64),
        }
    )


def write_training_sets(out_dir: Path, seed: int = 0, as_of: str = "2025-07-01", rows: dict | None = None) -> str:
    """Synthetic splits + a manifest in the pipelines.datasets format (sha256 verified on load)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    splits = {}
    for name in ("train", "validation", "test"):
        frame = _split_frame(rng, name, (rows or SPLIT_ROWS)[name])
        path = out_dir / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        splits[name] = {
            "rows": len(frame),
            "customers": int(frame.customer_id.nunique()),
            "churn_rate": float(frame.churned.mean()),
            "path": path.name,
            "sha256": _sha256(path),
        }
    manifest = {
        "manifest_version": 1,
        "as_of": as_of,
        "cutoffs": SPLIT_CUTOFFS,
        "id_column": "customer_id",
        "cutoff_column": "cutoff_date",
        "feature_names": FEATURES,
        "text_column": "text_view",
        "segment_columns": ["tenure_band", "acquisition_channel"],
        "label_column": "churned",
        "splits": splits,
    }
    path = out_dir / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2))
    return str(path)


def make_bundle(out_dir: Path, train: pd.DataFrame, validation: pd.DataFrame, quality: str, seed: int = 0) -> Path:
    """A real LightGBM baseline bundle (text model + bundle.json) of the given quality."""
    import lightgbm as lgb

    from pipelines.models import fit_calibrator, save_baseline_bundle

    used = QUALITY_FEATURES[quality]
    params = {
        "objective": "binary",
        "learning_rate": 0.1,
        "num_leaves": 7,
        "min_data_in_leaf": 20,
        "verbose": -1,
        "num_threads": 1,
        "seed": seed,
        "deterministic": True,
    }
    booster = lgb.train(
        params, lgb.Dataset(train[used].to_numpy(), label=train["churned"].to_numpy()), num_boost_round=40
    )
    raw_val = booster.predict(validation[used].to_numpy())
    calibrator = fit_calibrator(validation["churned"].to_numpy(), raw_val, "isotonic")
    return save_baseline_bundle(
        out_dir, booster=booster, feature_names=used, calibrator=calibrator, threshold=0.5, extra={"quality": quality}
    )


@dataclass
class FakeFit:
    """Stands in for pipelines.training.fit_candidates; ``quality`` picks the transformer candidate's quality."""

    quality: str = "good"
    baseline_quality: str = "bad"
    calls: list = field(default_factory=list)

    def __call__(self, config, sets, output_dir, on_epoch_end=None):
        from pipelines.models.metrics import compute_metrics
        from pipelines.training import CandidateResult, FitResult

        self.calls.append(str(output_dir))
        output_dir = Path(output_dir)
        results = {}
        for kind, quality in (("transformer", self.quality), ("baseline", self.baseline_quality)):
            bundle = make_bundle(output_dir / kind, sets.train, sets.validation, quality)
            from pipelines.models import load_bundle

            p_val = load_bundle(bundle).predict_proba(sets.validation)
            metrics = compute_metrics(sets.validation["churned"].to_numpy(), p_val)
            history = [{"epoch": e, "train_loss": 0.7 / e, "val_pr_auc": metrics["pr_auc"] - 0.01 / e} for e in (1, 2)]
            if on_epoch_end is not None and kind == "transformer":
                for row in history:
                    on_epoch_end(kind, row["epoch"], dict(row))
            results[kind] = CandidateResult(
                kind=kind,
                bundle_dir=bundle,
                validation_metrics=metrics,
                history=history,
                best_epoch=2,
                seconds=0.1,
                threshold=0.5,
            )
        if config.training.candidate != "best":
            chosen = config.training.candidate
        else:
            chosen = max(results, key=lambda k: results[k].validation_metrics["pr_auc"])
        notes = [] if chosen == "transformer" else ["baseline chosen by validation PR-AUC"]
        return FitResult(candidates=results, chosen=chosen, notes=notes)


class RegistryEnv:
    """One temp MLflow store + datasets; ``train(quality)`` logs, evaluates and registers a version."""

    def __init__(self, root: Path, fake: FakeFit):
        from pipelines.config import Config

        self.root = root
        self.fake = fake
        self.manifest = write_training_sets(root / "datasets" / "2025-07-01")
        self.config = Config().with_overrides(
            {
                "warehouse": {"url": f"duckdb:///{root}/warehouse.duckdb"},
                "registry": {
                    "tracking_uri": f"sqlite:///{root}/mlflow.db",
                    "artifact_location": str(root / "mlartifacts"),
                    "auto_promote": True,
                    "bootstrap_rounds": 200,
                },
                "dataset": {"output_dir": str(root / "datasets")},
                "monitoring": {"reports_dir": str(root / "reports"), "reference_sample_rows": 300},
                "privacy": {"key_file": str(root / "pseudonym.key")},
            }
        )
        self.versions: dict[str, tuple[str, str]] = {}

    def train(self, quality: str, config=None) -> tuple[str, str]:
        from pipelines.evaluation import evaluate_run
        from pipelines.registry import register_candidate
        from pipelines.training import train_and_log

        config = config or self.config
        self.fake.quality = quality
        run_id = train_and_log(config, self.manifest)
        evaluate_run(config, run_id)
        version = register_candidate(config, run_id)
        return run_id, version

    def version(self, label: str, quality: str) -> tuple[str, str]:
        """(run_id, version) trained once per module under ``label``."""
        if label not in self.versions:
            self.versions[label] = self.train(quality)
        return self.versions[label]


@pytest.fixture(scope="module")
def registry_env(tmp_path_factory):
    """Module-scoped: the SQLite store and the trained versions are shared by the tests of a module."""
    import pipelines.training.job

    fake = FakeFit()
    with pytest.MonkeyPatch.context() as mp:
        for name in ("CHURN_CONFIG", "CHURN_WAREHOUSE_URL", "CHURN_WAREHOUSE_SCHEMA", "MLFLOW_TRACKING_URI"):
            mp.delenv(name, raising=False)
        mp.setattr(pipelines.training.job, "fit_candidates", fake)
        env = RegistryEnv(tmp_path_factory.mktemp("registry"), fake)
        # the jobs leave MLflow's process-wide URI alone; the tests' own fluent calls (mlflow.pyfunc.load_model,
        # mlflow.artifacts.download_artifacts) use the store through it
        with tracking.use_tracking(env.config):
            yield env


@pytest.fixture
def write_sets():
    """``write_sets(out_dir, rows={...}) -> manifest path`` (synthetic splits in the datasets format)."""
    return write_training_sets
