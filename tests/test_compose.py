"""docker-compose.yml: parses, has the services of a CeleryExecutor deployment, and every path,
command and reference in it points at something that exists (Docker itself is not needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-worker-gpu",
    "airflow-init",
}
LONG_RUNNING = {"postgres", "redis", "mlflow"} | (AIRFLOW_SERVICES - {"airflow-init"})


@pytest.fixture(scope="module")
def raw() -> str:
    return COMPOSE.read_text()


@pytest.fixture(scope="module")
def compose(raw) -> dict:
    return yaml.safe_load(raw)  # merge keys (<<: *anchor) are resolved by PyYAML


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def test_services_present(services):
    assert {"postgres", "redis", "mlflow"} | AIRFLOW_SERVICES <= set(services)


def test_shared_anchor_used_by_every_airflow_service(raw, compose, services):
    assert "x-airflow-common" in compose and "&airflow-common" in raw and "&airflow-common-env" in raw
    common_env = compose["x-airflow-common"]["environment"]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        for key in (
            "AIRFLOW__CORE__EXECUTOR",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
            "CHURN_WAREHOUSE_URL",
            "MLFLOW_TRACKING_URI",
            "CHURN_CONFIG",
        ):
            assert env.get(key) == common_env[key], f"{name}: {key}"
        assert services[name]["volumes"] == compose["x-airflow-common"]["volumes"], name


def test_executor_broker_and_metadata(compose):
    env = compose["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert (
        env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
        or "@redis:6379" in env["AIRFLOW__CELERY__BROKER_URL"]
    )
    assert "@postgres/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-apiserver:8080/")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    # the warehouse is a separate database from the Airflow metadata
    assert _default(env["CHURN_WAREHOUSE_URL"]).endswith("@postgres:5432/warehouse")
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["CHURN_CONFIG"].startswith("/opt/churn/configs/")
    assert (ROOT / "configs" / Path(env["CHURN_CONFIG"]).name).is_file()


def _default(value: str) -> str:
    """A value as compose interpolates it with no variable set: ``${VAR:-default}`` -> default (nested too)."""
    while True:
        new = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^${}]*)\}", r"\1", value)
        if new == value:
            return value
        value = new


def test_warehouse_url_can_switch_to_spark(compose, raw):
    """Postgres by default; CHURN_WAREHOUSE_URL picks another warehouse, e.g. the documented Spark one (which parses)."""
    env = compose["x-airflow-common"]["environment"]
    assert env["CHURN_WAREHOUSE_URL"].startswith("${CHURN_WAREHOUSE_URL:-postgresql://")
    documented = re.search(r"CHURN_WAREHOUSE_URL='(spark\+local:[^']+)'", raw).group(1)
    from sqlalchemy.engine import make_url

    url = make_url(documented)
    assert url.drivername == "spark+local" and url.database.startswith("/opt/churn/data/")  # the shared volume
    assert "churn-data:/opt/churn/data" in compose["x-airflow-common"]["volumes"]
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "openjdk-17-jre-headless" in dockerfile  # pyspark needs Java 17 or 21


def test_commands(services):
    assert services["airflow-apiserver"]["command"] == "api-server"
    assert services["airflow-scheduler"]["command"] == "scheduler"
    assert services["airflow-dag-processor"]["command"] == "dag-processor"
    assert services["airflow-triggerer"]["command"] == "triggerer"
    assert services["airflow-worker"]["command"].startswith("celery worker")
    gpu_cmd = services["airflow-worker-gpu"]["command"]
    assert re.search(r"celery worker .*--queues gpu\b", gpu_cmd)
    assert "--queues gpu" not in services["airflow-worker"]["command"]
    init = "\n".join(services["airflow-init"]["command"])
    assert (
        "/entrypoint airflow version" in init
        and services["airflow-init"]["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    )
    assert services["airflow-init"]["environment"]["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert "airflow connections" not in init  # the jobs read CHURN_WAREHOUSE_URL / MLFLOW_TRACKING_URI
    assert "churn init-warehouse" in init
    mlflow_cmd = " ".join(services["mlflow"]["command"])
    assert "--serve-artifacts" in mlflow_cmd and "postgresql://" in mlflow_cmd and "@postgres:5432/mlflow" in mlflow_cmd


def test_gpu_worker_reserves_an_nvidia_device(services):
    devices = services["airflow-worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices and devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "deploy" not in services["airflow-worker"]


def test_gpu_queue_matches_the_dags(compose):
    """The DAGs route training to $CHURN_GPU_QUEUE; the compose file passes it through to every service."""
    env = compose["x-airflow-common"]["environment"]
    assert "CHURN_GPU_QUEUE" in env
    assert "CHURN_GPU_QUEUE" in (ROOT / "dags" / "churn_common.py").read_text()


def test_healthchecks_and_depends_on(services):
    for name in LONG_RUNNING:
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
        assert services[name]["healthcheck"]["test"], name
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
    for worker in ("airflow-worker", "airflow-worker-gpu"):
        assert services[worker]["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # every depends_on target is a service
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown {dep}"


def test_mounts_and_build_files_exist(compose, services):
    named_volumes = set(compose.get("volumes") or {})
    for name, svc in services.items():
        build = svc.get("build")
        if build:
            context = ROOT / build.get("context", ".")
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), f"{name}: missing Dockerfile"
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: mount source {source} does not exist"
            else:
                assert source in named_volumes, f"{name}: named volume {source} is not declared"
    airflow_mounts = {v.split(":")[1]: v.split(":")[0] for v in compose["x-airflow-common"]["volumes"]}
    assert airflow_mounts["/opt/airflow/dags"] == "./dags"
    assert airflow_mounts["/opt/airflow/plugins"] == "./plugins"
    assert (ROOT / "dags" / "churn_training.py").is_file() and (ROOT / "plugins" / "churn_ops.py").is_file()


def test_postgres_init_creates_warehouse_and_mlflow_databases(services):
    script = ROOT / "docker" / "postgres-init" / "01-create-databases.sh"
    assert script.is_file() and script.stat().st_mode & 0o111, "init script must be executable"
    text = script.read_text()
    env = services["postgres"]["environment"]
    assert env["WAREHOUSE_DB"] == "warehouse" and env["MLFLOW_DB"] == "mlflow"
    assert "CREATE DATABASE" in text and "WAREHOUSE_DB" in text and "MLFLOW_DB" in text


def test_airflow_dockerfile_installs_our_package_with_constraints():
    text = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(r"^FROM apache/airflow:3\.3\.2-python3\.11\b", text, re.M)
    assert "-c constraints.txt" in text and "apache-airflow==${AIRFLOW_VERSION}" in text
    assert " -e " not in text  # a regular install: the package must not need the source checkout
    for path in re.findall(r"^COPY (?:--chown=\S+ )?(.+) /(?:opt/churn|tmp/churn-src)/\S*$", text, re.M):
        for item in path.split():
            assert (ROOT / item).exists(), f"Dockerfile copies {item}, which does not exist"
    mlflow = (ROOT / "docker" / "mlflow.Dockerfile").read_text()
    assert "ghcr.io/mlflow/mlflow:v3.17.2" in mlflow and "psycopg2" in mlflow


def test_dollar_signs_meant_for_the_shell_are_escaped(raw):
    """Compose interpolates ${VAR}; shell-time variables must be written $${VAR} (or be defined with defaults)."""
    allowed = {
        "AIRFLOW_UID",
        "POSTGRES_PASSWORD",
        "WAREHOUSE_PASSWORD",
        "MLFLOW_DB_PASSWORD",
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
        "CHURN_GPU_QUEUE",
        "CHURN_GPU_POOL",
        "CHURN_SCORING_CRON",
        "CHURN_WAREHOUSE_URL",
        "_AIRFLOW_WWW_USER_USERNAME",
        "_AIRFLOW_WWW_USER_PASSWORD",
        "CHURN_AIRFLOW_IMAGE",
        "CHURN_MLFLOW_IMAGE",
    }
    for match in re.finditer(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", raw):
        assert match.group(1) in allowed, f"${{{match.group(1)}}} would be interpolated by compose"
