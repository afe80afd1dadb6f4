"""The benchmark harness at a tiny scale: well-formed results, no speed assertions."""

from __future__ import annotations

import json
import math

import pytest

from benchmarks.__main__ import main
from benchmarks.common import parse_scale, scale_label


def test_parse_scale():
    assert parse_scale("10k") == 10_000
    assert parse_scale("1m") == 1_000_000
    assert parse_scale("200") == 200
    assert scale_label(100_000) == "100k"


def test_tiny_run_writes_json_and_markdown(tmp_path, capsys):
    out, work = tmp_path / "results", tmp_path / "work"
    rc = main(
        [
            "--scale",
            "200",
            "--stages",
            "gen,features,writeback",
            "--postgres-url",
            "none",
            "--repeat",
            "1",
            "--out",
            str(out),
            "--work-dir",
            str(work),
            "--quiet",
        ]
    )
    assert rc == 0
    json_files, md_files = list(out.glob("*.json")), list(out.glob("*.md"))
    assert len(json_files) == 1 and len(md_files) == 1
    assert json_files[0].stem == md_files[0].stem

    doc = json.loads(json_files[0].read_text())
    machine = doc["machine"]
    assert machine["cpu_cores"] >= 1 and machine["memory_gib"] > 0 and machine["name"]
    assert "gpu" in machine
    for key in ("python", "torch", "duckdb", "pandas", "transformers"):
        assert machine["versions"][key]
    assert "commit" in machine["git"]

    (run,) = doc["runs"]
    assert run["scale"] == "200" and run["customers"] == 200
    assert set(run["stages"]) == {"gen", "features", "writeback"}
    for name, stage in run["stages"].items():
        assert stage["status"] in ("ok", "skipped"), (name, stage.get("reason"))
        assert stage["load_avg_1m"], name
        if stage["status"] == "skipped":
            assert stage["reason"].startswith("not implemented"), stage["reason"]
            continue
        assert stage["metrics"], name
        for key, metric in stage["metrics"].items():
            assert isinstance(metric["value"], float) and math.isfinite(metric["value"]) and metric["value"] > 0, key
            assert metric["unit"] and len(metric["runs"]) == 1

    wb = run["stages"]["writeback"]
    assert wb["status"] == "ok" and wb["info"]["rows"] == 200
    assert {"duckdb_rows_per_s", "duckdb_seconds"} <= set(wb["metrics"])
    assert not any(k.startswith("postgres") for k in wb["metrics"])
    if run["stages"]["gen"]["status"] == "ok":
        info = run["stages"]["gen"]["info"]
        assert info["row_counts"]["customers"] == 200 and info["row_counts"]["orders"] > 0
    targets = {t["key"]: t for t in run["targets"]}
    assert targets["gpu_finetune"]["status"] in ("not measured here", "met", "missed")
    assert targets["writeback_duckdb"]["status"] in ("met", "missed")

    markdown = md_files[0].read_text()
    assert "| stage | metric | value |" in markdown and "### Targets" in markdown
    assert "duckdb_rows_per_s" in markdown
    assert "| stage | metric | value |" in capsys.readouterr().out


def test_unimplemented_stage_is_skipped_not_failed(tmp_path, monkeypatch):
    import benchmarks.stages.data as data

    def missing(*_a, **_k):
        from benchmarks.common import NotImplementedStage

        raise NotImplementedStage("pipelines.data.generator")

    monkeypatch.setattr(data, "generate", missing)
    monkeypatch.setattr(data, "require", missing)
    import benchmarks.stages.gen as gen

    monkeypatch.setattr(gen, "generate", missing)
    rc = main(
        [
            "--scale",
            "50",
            "--stages",
            "gen",
            "--postgres-url",
            "none",
            "--out",
            str(tmp_path),
            "--work-dir",
            str(tmp_path / "w"),
            "--quiet",
        ]
    )
    assert rc == 0
    doc = json.loads(next(tmp_path.glob("*.json")).read_text())
    stage = doc["runs"][0]["stages"]["gen"]
    assert stage["status"] == "skipped" and "not implemented" in stage["reason"]
    assert "**skipped**" in next(tmp_path.glob("*.md")).read_text()


def test_demo_timings_are_parsed_from_the_printed_table():
    from benchmarks.stages.demo import parse_timeline

    out = [
        "\x1b[1m== init warehouse (reset)\x1b[0m",
        "   done in 3s",
        "\x1b[1m== dag churn_training\x1b[0m",
        "epoch 1/3",
        "\x1b[1m== stage timings\x1b[0m",
        "init warehouse (reset)          3 s",
        "dag churn_training             95 s",
        "total                         98 s",
    ]
    steps = parse_timeline([(float(i), line) for i, line in enumerate(out)], total=10.0)
    assert [(s["stage"], s["seconds"]) for s in steps] == [
        ("init warehouse (reset)", 3.0),
        ("dag churn_training", 95.0),
    ]
    headers_only = parse_timeline([(0.0, "== a"), (4.0, "x"), (6.0, "== b")], total=10.0)
    assert [(s["stage"], s["seconds"]) for s in headers_only] == [("a", 6.0), ("b", 4.0)]


def test_tiny_score_stage_reports_every_variant_and_the_default_path(tmp_path):
    out, work = tmp_path / "results", tmp_path / "work"
    rc = main(
        [
            "--scale",
            "200",
            "--stages",
            "gen,score",
            "--postgres-url",
            "none",
            "--repeat",
            "1",
            "--score-limit",
            "48",
            "--score-max-length",
            "32",
            "--out",
            str(out),
            "--work-dir",
            str(work),
            "--quiet",
        ]
    )
    assert rc == 0
    (run,) = json.loads(next(out.glob("*.json")).read_text())["runs"]
    score = run["stages"]["score"]
    assert score["status"] == "ok", score.get("reason")
    metrics, info = score["metrics"], score["info"]
    for variant in ("fixed_fp32", "bucketed_fp32", "bucketed_int8"):
        assert metrics[f"{variant}_customers_per_s"]["value"] > 0
    if info["cpu_native_bf16"]:
        assert metrics["bucketed_bf16_max_abs_dp"]["value"] < 0.05  # bf16 moves scores a little, not a lot
    assert metrics["bucketed_fp32_max_abs_dp"]["value"] < 1e-4  # dynamic padding does not change scores
    if info["onnxruntime"]:
        assert metrics["bucketed_onnx_max_abs_dp"]["value"] < 1e-4  # the ONNX graph is the same network
        assert metrics["bucketed_onnx_int8_vs_fixed_fp32"]["value"] > 0
        for variant in ("bucketed_onnx_int8_static", "bucketed_onnx_int8_block"):  # measured, not offered
            assert metrics[f"{variant}_customers_per_s"]["value"] > 0
            assert 0 < metrics[f"{variant}_max_abs_dp"]["value"] < 0.5
    assert info["max_length"] == 32 and info["default_path"].startswith("bucketed_")
    chosen = info["default_path"].split()[0]
    assert metrics["default_customers_per_s"]["value"] == metrics[f"{chosen}_customers_per_s"]["value"]
    assert metrics["default_max_abs_dp"]["value"] == metrics[f"{chosen}_max_abs_dp"]["value"]
    target = {t["key"]: t for t in run["targets"]}["cpu_scoring"]
    assert target["status"] in ("met", "missed") and "customers/s" in target["measured"]
    # the compute ceiling: fixed-length work at 32 tokens exceeds the bucketed work, and both peaks are measured
    assert metrics["encoder_gflop_per_customer_fixed"]["value"] >= metrics["encoder_gflop_per_customer"]["value"] > 0
    for precision in ("fp32", "int8"):
        assert metrics[f"gemm_{precision}_gflops"]["value"] > 0
        assert metrics[f"ceiling_{precision}_customers_per_s"]["value"] > 0
    assert any(note.startswith("compute ceiling:") for note in score["notes"])


def test_encoder_flops_count_dense_layers_and_attention():
    from types import SimpleNamespace

    from benchmarks.stages.score import encoder_flops_per_customer

    minilm = SimpleNamespace(hidden_size=384, intermediate_size=1536, num_hidden_layers=6)
    # per layer and token: 4*384^2 (Q, K, V, output) + 2*384*1536 (feed-forward) + 2*128*384 (attention)
    per_token = 4 * 384**2 + 2 * 384 * 1536 + 2 * 128 * 384
    assert encoder_flops_per_customer(minilm, 128, 128) == 2 * 6 * per_token * 128
    assert encoder_flops_per_customer(minilm, 64, 128) == encoder_flops_per_customer(minilm, 128, 128) / 2


@pytest.mark.slow  # ~1-2 min: 200 generated customers, 8 feature cutoffs with BG/NBD fits, two LightGBM fits
def test_tiny_quality_stage_reports_test_metrics_and_the_paired_ci(tmp_path):
    out, work = tmp_path / "results", tmp_path / "work"
    args = ["--scale", "200", "--stages", "quality", "--quality-candidates", "lightgbm", "--postgres-url", "none"]
    assert main([*args, "--out", str(out), "--work-dir", str(work), "--quiet"]) == 0
    (run,) = json.loads(next(out.glob("*.json")).read_text())["runs"]
    stage = run["stages"]["quality"]
    assert stage["status"] == "ok", stage.get("reason")
    info, metrics = stage["info"], stage["metrics"]
    assert set(info["candidates"]) == {
        "lightgbm",
        "lightgbm_no_btyd",
        "orders_only",
        "orders_only_no_btyd",
        "numeric_mlp",  # the fused network's head without its text: the ablation's numeric-only arm
        "bgnbd",
    }
    for name in info["candidates"]:
        assert 0 < metrics[f"{name}_test_pr_auc"]["value"] <= 1 and 0 < metrics[f"{name}_test_roc_auc"]["value"] <= 1
    assert info["chosen_by_validation_pr_auc"] in ("lightgbm", "bgnbd")
    low, high = info["btyd_gain_ci95"]
    assert low <= metrics["btyd_features_gain_test_pr_auc"]["value"] <= high
    assert any("paired bootstrap 95% CI" in note for note in stage["notes"])


def test_quality_evaluation_sample_keeps_whole_customers_and_leaves_train_alone():
    from benchmarks.stages.quality import sample_evaluation
    from tests.helpers.synthetic import make_sets

    sets = make_sets(n_train=120, n_val=80, n_test=80, seed=1, max_orders=2)
    sampled = sample_evaluation(sets, 30, seed=0)
    assert sampled.train is sets.train
    for split in ("validation", "test"):
        assert sampled.split(split)["customer_id"].nunique() == 30
        assert set(sampled.split(split)["customer_id"]) <= set(sets.split(split)["customer_id"])
    again = sample_evaluation(sets, 30, seed=0)
    assert set(again.test["customer_id"]) == set(sampled.test["customer_id"])  # seeded: the same customers
    assert sample_evaluation(sets, 1000, seed=0).test is sets.test  # fewer customers than asked: all of them
