"""The churn operations plugin: Airflow's plugin manager loads it, its FastAPI app answers, and missing
data (no champion, empty warehouse) renders a friendly page rather than a 500."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLUGINS_DIR = ROOT / "plugins"


@pytest.fixture
def plugin_module(monkeypatch):
    monkeypatch.setenv("CHURN_OPS_PAGE_PUBLIC", "1")
    monkeypatch.syspath_prepend(str(PLUGINS_DIR))
    import importlib

    import churn_ops

    return importlib.reload(churn_ops)  # re-create the app with the public setting


@pytest.fixture
def client_for(plugin_module, monkeypatch, tmp_path):
    """A TestClient of the plugin app over the given config (written to a file, as CHURN_CONFIG)."""
    from fastapi.testclient import TestClient

    def make(config):
        path = tmp_path / "churn.yaml"
        path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
        monkeypatch.setenv("CHURN_CONFIG", str(path))
        return TestClient(plugin_module.create_app(), raise_server_exceptions=False)

    return make


def test_plugin_manager_loads_the_plugin(tmp_path):
    """`airflow plugins` (the real plugin manager, fresh process) lists it without import errors."""
    env = dict(
        os.environ,
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(PLUGINS_DIR),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PYTHONPATH=str(ROOT),
    )
    code = (
        "from airflow import plugins_manager as pm;"
        "plugins, errors = pm._get_plugins();"
        "assert not errors, errors;"
        "p = [p for p in plugins if p.name == 'churn_ops'];"
        "assert p, [x.name for x in plugins];"
        "apps, _ = pm.get_fastapi_plugins();"
        "assert any(a['url_prefix'] == '/churn' for a in apps), apps;"
        "views, _ = pm._get_ui_plugins();"
        "assert any(v['name'] == 'Churn model' and not v['href'].startswith('/') for v in views), views;"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]


def test_url_prefix_is_not_reserved(plugin_module):
    from airflow.api_fastapi.app import RESERVED_URL_PREFIXES

    prefix = plugin_module.ChurnOpsPlugin.fastapi_apps[0]["url_prefix"]
    assert not any(prefix.startswith(r) for r in RESERVED_URL_PREFIXES)


def test_page_without_champion_or_data_is_friendly(client_for, config):
    client = client_for(config)  # nothing exists: no warehouse file, empty MLflow store
    page = client.get("/")
    assert page.status_code == 200
    assert "No champion model yet" in page.text
    assert "does not exist yet" in page.text
    summary = client.get("/api/summary").json()
    assert summary["champion"]["available"] is False
    assert summary["scoring"]["available"] is False
    assert client.get("/reports/drift/2026-01-01").status_code == 404
    assert client.get("/reports/drift/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.get("/health").json() == {"status": "ok"}


def test_page_with_scores_and_drift(client_for, config):
    """A warehouse with one scores partition and one drift partition: rows, tiers, drift link."""
    import pandas as pd

    from pipelines.warehouse import open_warehouse

    day = dt.date(2026, 1, 1)
    now = pd.Timestamp("2026-01-01T05:00:00Z")
    with open_warehouse(config) as wh:
        wh.init_schema()
        wh.replace_partition(
            "churn_scores",
            pd.DataFrame(
                {
                    "customer_id": [1, 2, 3],
                    "score_date": [day] * 3,
                    "churn_probability": [0.9, 0.4, 0.1],
                    "risk_tier": ["high", "medium", "low"],
                    "model_name": ["churn-risk"] * 3,
                    "model_version": ["3"] * 3,
                    "run_id": ["scheduled__2026-01-01"] * 3,
                    "scored_at": [now] * 3,
                }
            ),
            "score_date",
            day,
        )
        report = config.resolve_path(config.monitoring.reports_dir) / "drift" / "2026-01-01.html"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text("<html>drift report</html>")
        wh.replace_partition(
            "monitoring_drift",
            pd.DataFrame(
                {
                    "score_date": [day, day],
                    "model_version": ["3", "3"],
                    "metric": ["share_drifted_features", "feature_drift"],
                    "feature": ["__dataset__", "orders_90d"],
                    "value": [0.5, 0.2],
                    "threshold": [0.3, 0.1],
                    "drifted": [True, True],
                    "report_path": [str(report)] * 2,
                    "computed_at": [now] * 2,
                }
            ),
            "score_date",
            day,
        )

    client = client_for(config)
    summary = client.get("/api/summary").json()
    assert summary["scoring"]["rows"] == 3
    assert summary["scoring"]["tiers"] == {"high": 1, "medium": 1, "low": 1}
    assert summary["drift"]["drifted"] is True
    assert summary["drift"]["drifted_features"] == ["orders_90d"]
    page = client.get("/")
    assert page.status_code == 200
    assert "drift detected" in page.text and "reports/drift/2026-01-01" in page.text
    assert client.get("/reports/drift/2026-01-01").text == "<html>drift report</html>"


def test_requires_authentication_by_default(monkeypatch):
    """Without CHURN_OPS_PAGE_PUBLIC the endpoints need an Airflow user: the page sends a logged-out browser to
    the login page (and back), the JSON API answers 401."""
    monkeypatch.delenv("CHURN_OPS_PAGE_PUBLIC", raising=False)
    monkeypatch.syspath_prepend(str(PLUGINS_DIR))
    import importlib

    import churn_ops
    from fastapi.testclient import TestClient

    churn_ops = importlib.reload(churn_ops)
    client = TestClient(churn_ops.create_app(), raise_server_exceptions=False)
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/auth/login")
    assert "next=" in page.headers["location"]
    assert client.get("/api/summary").status_code == 401
    assert client.get("/reports/drift/2026-01-01", follow_redirects=False).status_code == 303
    assert client.get("/health").status_code == 200
