import pytest

from pipelines.config import DEFAULT_CONFIG_PATH, Config, ConfigError, load_config, validate_identifier


def test_default_yaml_documents_exactly_the_defaults():
    assert load_config(DEFAULT_CONFIG_PATH) == Config()


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  epochz: 3\n")
    with pytest.raises(ConfigError, match=r"training\.epochz: unknown key"):
        load_config(path)


def test_bad_value_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  batch_size: -1\n")
    with pytest.raises(ConfigError, match=r"training\.batch_size"):
        load_config(path)


def test_bad_schema_identifier_rejected():
    with pytest.raises(ConfigError, match="schema_name"):
        Config().with_overrides({"warehouse": {"schema_name": "public; drop table x"}})


@pytest.mark.parametrize("name", ["customers", "_x1", "A_b"])
def test_valid_identifiers(name):
    assert validate_identifier(name) == name


@pytest.mark.parametrize("name", ["1abc", "a-b", 'a"b', "", "a b", "x" * 64])
def test_invalid_identifiers(name):
    with pytest.raises(ConfigError):
        validate_identifier(name)


def test_env_overrides_urls_only(monkeypatch, tmp_path):
    monkeypatch.setenv("CHURN_WAREHOUSE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    cfg = Config()
    assert cfg.warehouse_url == "postgresql://u@h/db"
    assert cfg.tracking_uri == "http://mlflow:5000"


def test_relative_paths_resolve_to_project_root():
    cfg = Config()
    assert cfg.warehouse_url.startswith("duckdb:////") and cfg.warehouse_url.endswith("data/warehouse.duckdb")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_duckdb_memory_limit_must_be_a_size():
    with pytest.raises(ConfigError, match="warehouse.duckdb_memory_limit"):
        Config().with_overrides({"warehouse": {"duckdb_memory_limit": "lots"}})
