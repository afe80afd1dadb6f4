"""MLflow tracking + registry on a real temp SQLite store: round trip, no pickles, gate, aliases, rollback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.contract import ExitCode
from pipelines.registry import (
    CHAMPION,
    NoChampionError,
    RegistryError,
    UnknownVersionError,
    compare_versions,
    list_versions,
    load_model_version,
    promote,
    resolve_champion,
    rollback,
    run_promotion_gate,
)
from pipelines.tracking import bundle_dir_of

PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".ckpt", ".cloudpickle"}


def _client(config):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)


def test_no_champion_is_a_clear_error(config):
    with pytest.raises(NoChampionError, match="no @champion") as info:
        resolve_champion(config)
    assert info.value.exit_code == ExitCode.REGISTRY
    with pytest.raises(NoChampionError):
        rollback(config)
    with pytest.raises(UnknownVersionError) as info:
        promote(config, "7")
    assert info.value.exit_code == ExitCode.REGISTRY
    assert list_versions(config) == []


def test_unreachable_registry_is_a_clear_error(config, monkeypatch):
    from pipelines.registry import RegistryUnavailableError

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(RegistryUnavailableError, match="unreachable") as info:
        resolve_champion(config)
    assert info.value.exit_code == ExitCode.REGISTRY


def test_run_contents_and_pyfunc_round_trip(registry_env):
    import mlflow

    config = registry_env.config
    run_id, version = registry_env.version("weak", "weak")
    client = _client(config)
    run = client.get_run(run_id)

    # params, tags, lineage
    params, tags, metrics = run.data.params, run.data.tags, run.data.metrics
    assert params["registry.model_name"] == "churn-risk" and params["training.epochs"] == "3"
    assert params["dataset.train.rows"] == "1200" and params["dataset.test.cutoffs"] == "2025-04-01"
    assert tags["as_of"] == "2025-07-01" and tags["manifest_path"] == registry_env.manifest
    assert tags["run_type"] == "training" and "Chosen candidate" in tags["mlflow.note.content"]
    assert tags["candidate_kind"] == "transformer" and tags["other_candidate_kind"] == "baseline"
    assert tags["dataset.splits.train.sha256"] and tags["version.mlflow"] == mlflow.__version__
    assert tags["model_id"].startswith("m-") and tags["transformer_beat_baseline"] == "true"
    # both candidates side by side, per-epoch curves, test metrics of both
    for key in (
        "transformer_val_pr_auc",
        "baseline_val_pr_auc",
        "val_pr_auc",
        "test_pr_auc",
        "test_roc_auc",
        "test_brier",
        "transformer_test_pr_auc",
        "baseline_test_pr_auc",
        "dataset_train_churn_rate",
    ):
        assert key in metrics, key
    history = client.get_metric_history(run_id, "transformer_epoch_train_loss")
    assert sorted(m.step for m in history) == [1, 2]
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"config", "dataset", "features", "reference", "candidates", "plots", "evaluation"} <= artifacts
    assert any(a.path.endswith(".png") for a in client.list_artifacts(run_id, "plots"))
    inputs = {d.dataset.name for d in run.inputs.dataset_inputs}
    assert "churn-train-2025-07-01" in inputs

    # reference sample for drift monitoring
    ref_path = client.download_artifacts(run_id, "reference/reference.parquet", str(registry_env.root / "ref"))
    reference = pd.read_parquet(ref_path)
    assert len(reference) == 300 and "prediction" in reference and "f_signal_b" in reference
    assert reference["prediction"].between(0, 1).all()
    # ... and its customer ids are keyed pseudonyms, as are the input example's (no raw id leaves the warehouse)
    from pipelines.datasets import load_training_sets
    from pipelines.features.privacy import pseudonym_key, pseudonymise_ids

    key = pseudonym_key(config)
    sets = load_training_sets(registry_env.manifest)
    raw_ids = set(pd.concat([sets.test, sets.validation])["customer_id"].tolist())
    assert not set(reference["customer_id"].tolist()) & raw_ids
    assert set(reference["customer_id"].tolist()) <= set(pseudonymise_ids(sorted(raw_ids), key).tolist())
    model_dir = Path(
        mlflow.artifacts.download_artifacts(f"models:/{tags['model_id']}", dst_path=str(registry_env.root / "ex"))
    )
    example = pd.read_json(model_dir / "input_example.json", orient="split")
    train_ids = sets.train["customer_id"].head(3).tolist()
    assert example["customer_id"].tolist() == pseudonymise_ids(train_ids, key).tolist()
    # the customer segments fitted with the model: arrays + names + profile, no pickle
    segments = {a.path for a in client.list_artifacts(run_id, "segments")}
    assert segments == {"segments/segments.safetensors", "segments/segments.json", "segments/profile.csv"}

    # the registered version: alias, tags, READY
    mv = client.get_model_version_by_alias("churn-risk", "challenger")
    assert str(mv.version) == version and mv.run_id == run_id and mv.status == "READY"
    assert mv.tags["candidate_kind"] == "transformer" and mv.tags["as_of"] == "2025-07-01"
    assert float(mv.tags["test_pr_auc"]) == pytest.approx(metrics["test_pr_auc"], abs=1e-5)
    assert "brier" in mv.tags

    # pyfunc by alias == bundle fast path on the same rows
    from pipelines.datasets import load_training_sets

    test = load_training_sets(registry_env.manifest).test.head(50)
    pyfunc = mlflow.pyfunc.load_model("models:/churn-risk@challenger")
    out = pyfunc.predict(test[["customer_id", "f_signal_a", "f_signal_b", "f_noise", "text_view"]])
    predictor = load_model_version(config, version)
    assert predictor.kind == "baseline"  # the fake "transformer" candidate is a LightGBM bundle
    np.testing.assert_allclose(out["churn_probability"].to_numpy(), predictor.predict_proba(test), rtol=1e-9)


def test_logged_model_holds_no_pickles(registry_env):
    import yaml

    import mlflow

    _, version = registry_env.version("weak", "weak")
    local = Path(
        mlflow.artifacts.download_artifacts(
            f"models:/churn-risk/{version}", dst_path=str(registry_env.root / "model-dl")
        )
    )
    files = [p for p in local.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix.lower() in PICKLE_SUFFIXES or p.name == "python_model.pkl"]
    mlmodel = yaml.safe_load((local / "MLmodel").read_text())
    pyfunc_conf = mlmodel["flavors"]["python_function"]
    assert "python_model" not in pyfunc_conf and pyfunc_conf["model_code_path"].endswith("pyfunc_model.py")
    bundle = bundle_dir_of(local)
    assert bundle.parent == local / "artifacts"
    assert (bundle / "bundle.json").is_file()
    assert (bundle / "model.txt").read_text().startswith("tree")  # LightGBM text format
    assert mlmodel["signature"]["inputs"] and (local / "input_example.json").is_file()


def test_pyfunc_loads_in_a_fresh_process(registry_env):
    registry_env.version("weak", "weak")
    code = (
        "import mlflow, pandas as pd\n"
        "m = mlflow.pyfunc.load_model('models:/churn-risk@challenger')\n"
        "df = pd.DataFrame({'customer_id': [1, 2], 'f_signal_a': [2.0, -2.0], 'f_signal_b': [-1.0, 1.0],"
        " 'f_noise': [0.0, 0.0], 'text_view': ['a', 'b']})\n"
        "p = m.predict(df)['churn_probability']\n"
        "assert len(p) == 2 and p.between(0, 1).all(), p\n"
        "print('OK')\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": registry_env.config.tracking_uri}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=registry_env.root, env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]


def test_gate_promotion_rollback_and_ui_alias(registry_env):
    config = registry_env.config
    client = _client(config)
    _, v_weak = registry_env.version("weak", "weak")

    # no champion yet: the first challenger passes and (auto_promote) becomes champion
    result = run_promotion_gate(config, v_weak)
    assert result["passed"] and result["promoted"] and result["champion"] is None
    assert resolve_champion(config).version == v_weak

    # a worse challenger is refused; the champion stays
    _, v_bad = registry_env.version("bad", "bad")
    result = run_promotion_gate(config, v_bad)
    assert not result["passed"] and not result["promoted"] and result["champion"] == v_weak
    assert any("PR-AUC" in r and r.endswith("FAIL") for r in result["reasons"])
    assert client.get_model_version("churn-risk", v_bad).tags["gate.decision"].startswith("refused")
    bad_run = client.get_run(client.get_model_version("churn-risk", v_bad).run_id)
    assert bad_run.data.tags["transformer_beat_baseline"] == "false" and "did not beat" in bad_run.data.tags["notes"]
    assert resolve_champion(config).version == v_weak

    # a better challenger without auto_promote: "would promote", aliases untouched
    _, v_good = registry_env.version("good", "good")
    manual = config.with_overrides({"registry": {"auto_promote": False}})
    result = run_promotion_gate(manual, v_good)
    assert result["passed"] and not result["promoted"]
    assert result["metrics"]["challenger"]["pr_auc"] > result["metrics"]["champion"]["pr_auc"]
    assert client.get_model_version("churn-risk", v_good).tags["gate.decision"].startswith("would promote")
    assert resolve_champion(config).version == v_weak

    # with auto_promote it is promoted; the old champion is recorded
    result = run_promotion_gate(config, v_good)
    assert result["promoted"]
    ref = resolve_champion(config)
    assert ref.version == v_good and ref.model_uri == f"models:/churn-risk/{v_good}"
    assert client.get_model_version("churn-risk", v_good).tags["previous_champion"] == v_weak

    rows = {row["version"]: row for row in list_versions(config)}
    assert CHAMPION in rows[v_good]["aliases"] and "challenger" in rows[v_good]["aliases"]
    assert rows[v_bad]["aliases"] == [] and rows[v_bad]["gate"].startswith("refused")
    assert rows[v_good]["test_pr_auc"] > rows[v_bad]["test_pr_auc"]

    comparison = compare_versions(config, v_weak, v_good)
    paired = comparison["paired"]
    assert paired["newer"] == v_good and paired["pr_auc_difference"]["ci_low"] > 0

    # rollback restores the previous champion and records where it came from
    assert rollback(config) == v_weak
    assert resolve_champion(config).version == v_weak
    assert client.get_model_version("churn-risk", v_weak).tags["rolled_back_from"] == v_good
    with pytest.raises(RegistryError, match="previous_champion"):
        rollback(config)  # v_weak was the first champion: nothing earlier

    # an alias moved directly (as in the MLflow UI) is what everything reads
    client.set_registered_model_alias("churn-risk", CHAMPION, v_bad)
    assert resolve_champion(config).version == v_bad
    assert load_model_version(config, resolve_champion(config).version).feature_names == ["f_noise"]


def test_cli_models_promote_compare(registry_env, tmp_path, capsys):
    import yaml

    from pipelines.cli.main import main

    _, v_weak = registry_env.version("weak", "weak")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(registry_env.config.model_dump(mode="json")))
    base = ["--config", str(config_path)]

    assert main([*base, "promote", v_weak, "--reason", "cli test"]) == 0
    assert main([*base, "models"]) == 0
    out = capsys.readouterr().out
    assert "champion" in out and "test_pr_auc" in out
    assert main([*base, "models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any(CHAMPION in row["aliases"] for row in rows)
    assert main([*base, "promote", "999"]) == ExitCode.REGISTRY
    assert main([*base, "compare", v_weak, v_weak, "--no-paired"]) == 0
    assert "recorded" in capsys.readouterr().out
