"""`churn retention ...`: one cycle from the command line, and a clear exit code when there is nothing."""

from __future__ import annotations

import datetime as dt

import numpy as np
import yaml

from pipelines.cli.main import main
from pipelines.contract import ExitCode
from tests.pipelines.retention.conftest import ACTION_DATE


def _config_file(config, tmp_path):
    path = tmp_path / "config.yaml"
    data = config.model_dump(mode="json")
    data["retention"]["reports_dir"] = str(tmp_path / "reports")
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_cycle_from_the_command_line(shop, tmp_path, monkeypatch, capsys):
    import pipelines.retention.recommend as recommend

    monkeypatch.setattr(recommend, "encode_texts", lambda texts, encoder: np.eye(len(texts)))
    config, _ = shop
    cfg = _config_file(config, tmp_path)
    day = ACTION_DATE.isoformat()
    matured = (ACTION_DATE + dt.timedelta(days=config.retention.horizon_days)).isoformat()
    assert main(["--config", cfg, "retention", "assign", "--date", day, "--rules"]) == 0
    assert '"policy_version": "rules"' in capsys.readouterr().out
    assert main(["--config", cfg, "retention", "simulate", "--date", day]) == 0
    assert main(["--config", cfg, "retention", "measure", "--as-of", matured]) == 0
    assert (tmp_path / "reports" / f"{day}.html").exists()
    capsys.readouterr()
    assert main(["--config", cfg, "retention", "effects", "--date", day]) == 0
    out = capsys.readouterr().out
    assert "recommendation" in out and "top_risk_decile" in out and "dr" in out


def test_effects_of_an_unmeasured_date_exit_with_the_retention_code(shop, tmp_path, caplog):
    config, _ = shop
    code = main(["--config", _config_file(config, tmp_path), "retention", "effects", "--date", "2031-01-01"])
    assert code == ExitCode.RETENTION
    assert "retention_effects has no rows for 2031-01-01" in caplog.text
