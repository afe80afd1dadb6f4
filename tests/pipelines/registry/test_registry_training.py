"""End to end with the real training code: tiny encoder, real fit_candidates, real MLflow store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.mark.slow
@pytest.mark.training
def test_train_log_register_gate_with_real_training(config, tiny_encoder_dir, tmp_path, write_sets, monkeypatch):
    import mlflow
    from pipelines.datasets import load_training_sets
    from pipelines.evaluation import evaluate_run
    from pipelines.models.bundle import TransformerPredictor
    from pipelines.registry import load_model_version, register_candidate, resolve_champion, run_promotion_gate
    from pipelines.tracking import bundle_dir_of, use_tracking
    from pipelines.training import train_and_log

    config = config.with_overrides(
        {
            "model": {"encoder": tiny_encoder_dir, "max_length": 32, "head_hidden": [8]},
            "training": {
                "epochs": 2,
                "batch_size": 16,
                "eval_batch_size": 64,
                "device": "cpu",
                "num_threads": 1,
                "baseline_rounds": 20,
                "candidate": "transformer",
            },
            "registry": {"auto_promote": True, "bootstrap_rounds": 50},
            "monitoring": {"reference_sample_rows": 40},
        }
    )
    manifest = write_sets(tmp_path / "datasets" / "2025-07-01", rows={"train": 160, "validation": 100, "test": 120})
    run_id = train_and_log(config, manifest)
    client = mlflow.MlflowClient(config.tracking_uri)
    run = client.get_run(run_id)
    assert run.data.tags["candidate_kind"] == "transformer"
    steps = [m.step for m in client.get_metric_history(run_id, "transformer_epoch_train_loss")]
    assert steps and steps == sorted(steps)
    assert "baseline_val_pr_auc" in run.data.metrics and "transformer_val_pr_auc" in run.data.metrics

    encoded_rows = []
    encode = TransformerPredictor.predict_logits
    monkeypatch.setattr(
        TransformerPredictor,
        "predict_logits",
        lambda self, frame: encoded_rows.append(len(frame)) or encode(self, frame),
    )
    metrics = evaluate_run(config, run_id)
    monkeypatch.undo()
    assert 0 <= metrics["pr_auc"] <= 1
    # the test split is encoded once; validation not at all: the threshold is the one chosen on validation when the
    # candidate was trained (stored in its bundle)
    assert encoded_rows == [120]
    trained_threshold = client.get_run(run_id).data.metrics["transformer_val_threshold"]
    assert metrics["threshold"] == pytest.approx(trained_threshold)
    version = register_candidate(config, run_id)
    gate = run_promotion_gate(config, version)
    assert gate["promoted"] and resolve_champion(config).version == version

    # the logged transformer: safetensors only, no pickles; pyfunc == bundle fast path
    with use_tracking(config):  # the jobs leave MLflow's process-wide URI alone; these fluent calls need it
        local = Path(mlflow.artifacts.download_artifacts(f"models:/churn-risk/{version}", dst_path=str(tmp_path / "m")))
    files = [p for p in local.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in {".pkl", ".pickle", ".bin", ".pt", ".pth", ".joblib"}]
    assert list(bundle_dir_of(local).rglob("*.safetensors"))
    test = load_training_sets(manifest).test.head(20)
    with use_tracking(config):
        pyfunc = mlflow.pyfunc.load_model("models:/churn-risk@champion")
    p_pyfunc = pyfunc.predict(test[["customer_id", "f_signal_a", "f_signal_b", "f_noise", "text_view"]])
    p_bundle = load_model_version(config, version).predict_proba(test)
    np.testing.assert_allclose(p_pyfunc["churn_probability"].to_numpy(), p_bundle, rtol=1e-5, atol=1e-6)
