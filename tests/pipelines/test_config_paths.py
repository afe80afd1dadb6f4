"""Configured paths stay inside the project root (or an explicit absolute root): ``..`` escapes are refused.

Before: ``dataset.output_dir`` / ``validation.data_docs_dir`` set to ``../../..`` paths were accepted and
the platform wrote outside the project.
"""

import logging

import pytest
import yaml

from pipelines.config import PATH_KEYS, PROJECT_ROOT, Config, ConfigError, load_config
from pipelines.contract import ExitCode


def _override(key: str, value: str) -> dict:
    section, field = key.split(".")
    return {section: {field: value}}


@pytest.mark.parametrize("key", [*PATH_KEYS, "warehouse.url", "registry.tracking_uri"])
def test_relative_escapes_are_refused_naming_the_key(key):
    prefix = {"warehouse.url": "duckdb:///", "registry.tracking_uri": "sqlite:///"}.get(key, "")
    with pytest.raises(ConfigError) as err:
        Config().with_overrides(_override(key, prefix + "../../../tmp/escape"))
    message = str(err.value)
    assert message.startswith(f"invalid configuration in overrides: {key}: '../../../tmp/escape' resolves to")
    assert "outside the project root" in message and "<root>" not in message


def test_absolute_roots_are_the_users_choice_but_without_dotdot(tmp_path):
    config = Config().with_overrides({"dataset": {"output_dir": str(tmp_path / "sets")}})
    assert config.resolve_path(config.dataset.output_dir) == tmp_path / "sets"
    with pytest.raises(ConfigError, match=r"monitoring\.reports_dir: .* climbs with '\.\.'"):
        Config().with_overrides({"monitoring": {"reports_dir": f"{tmp_path}/../../etc"}})


def test_dotdot_that_stays_inside_and_remote_stores_are_fine():
    config = Config().with_overrides(
        {"dataset": {"output_dir": "data/../reports/sets"}, "registry": {"artifact_location": "s3://bucket/../x"}}
    )
    assert config.resolve_path(config.dataset.output_dir) == PROJECT_ROOT / "reports" / "sets"


def test_env_override_escape_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("CHURN_WAREHOUSE_URL", "duckdb:///../../outside.duckdb")
    with pytest.raises(ConfigError, match="CHURN_WAREHOUSE_URL: '../../outside.duckdb' resolves to"):
        Config().warehouse_url  # noqa: B018


def test_config_file_with_an_escape_fails_the_cli_before_anything_is_written(tmp_path, caplog):
    from pipelines.cli.main import main

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"validation": {"data_docs_dir": "../../../../tmp/docs-escape"}}))
    with pytest.raises(ConfigError, match=r"validation\.data_docs_dir"):
        load_config(path)
    with caplog.at_level(logging.ERROR):
        assert main(["--config", str(path), "validate", "--as-of", "2025-12-31"]) == ExitCode.CONFIG
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("validation.data_docs_dir" in e and "outside the project root" in e for e in errors)


def test_a_relative_spark_folder_is_under_the_project_root_and_keeps_its_options():
    config = Config().with_overrides({"warehouse": {"url": "spark+local:///data/spark-warehouse?master=local%5B2%5D"}})
    assert config.warehouse_url == f"spark+local:///{PROJECT_ROOT / 'data' / 'spark-warehouse'}?master=local%5B2%5D"
    with pytest.raises(ConfigError, match=r"warehouse\.url: '\.\./x' resolves to"):
        Config().with_overrides({"warehouse": {"url": "spark+local:///../x?master=local"}})
