"""The retention benchmark stage at a small scale: it runs and reports every figure (no thresholds here)."""

from __future__ import annotations

import json

import pytest

from benchmarks.__main__ import main


@pytest.mark.slow  # generates 1,500 customers and runs two campaign cycles
def test_retention_stage_reports_coverage_and_policy_values(tmp_path):
    out, work = tmp_path / "results", tmp_path / "work"
    argv = ["--scale", "1500", "--stages", "retention", "--postgres-url", "none"]
    rc = main([*argv, "--out", str(out), "--work-dir", str(work), "--quiet"])
    assert rc == 0
    stage = json.loads(next(out.glob("*.json")).read_text())["runs"][0]["stages"]["retention"]
    assert stage["status"] == "ok", stage["reason"]
    metrics = stage["metrics"]
    for key in ("uplift_ci_coverage", "ope_ci_coverage", "share_of_oracle_fitted_q", "share_of_oracle_dr"):
        assert 0.0 <= metrics[key]["value"] <= 1.5, key
    values = {k: m["value"] for k, m in metrics.items() if k.startswith("net_value_")}
    assert values["net_value_oracle"] >= max(v for k, v in values.items() if k != "net_value_oracle") - 1e-9
    assert {"effect_coupon", "effect_outreach", "effect_recommendation", "ope_random"} <= set(stage["info"])
