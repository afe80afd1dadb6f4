"""A damaged bundle in the local model cache is one clear error under ``churn score``, not a traceback."""

from __future__ import annotations

import logging

import yaml

from pipelines.contract import ExitCode
from pipelines.registry import load_model_version


def test_corrupted_cached_bundle_is_one_line_under_churn_score(registry_env, tmp_path, caplog):
    from pipelines.cli.main import main

    config = registry_env.config
    _, version = registry_env.version("weak", "weak")
    load_model_version(config, version)  # downloads into the cache
    [model_txt] = (config.resolve_path(config.dataset.output_dir).parent / "models").rglob("model.txt")
    data = bytearray(model_txt.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit flipped on disk
    model_txt.write_bytes(bytes(data))

    from pipelines.warehouse import open_warehouse

    with open_warehouse(config) as wh:  # score checks the warehouse schema before it loads the model
        wh.init_schema()
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    with caplog.at_level(logging.ERROR):
        code = main(["--config", str(config_path), "score", "--date", "2025-07-01", "--model-version", version])
    assert code == ExitCode.SCORING
    [line] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "model.txt is corrupted" in line and f"v{version}" in line and "to download it again" in line
    assert "\n" not in line
