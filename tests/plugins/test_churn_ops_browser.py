"""The operator page in a real headless Chromium (the Debian package, driven by Playwright), logged in with an
Airflow JWT as the UI would be: it loads, shows the champion, every chart image loads, no console errors and
no failed requests. The plugin's app runs under uvicorn in a child process with a throwaway Airflow metadata DB
(tables created directly, no migrations) so that Airflow's own token check runs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

SERVER = """
import datetime as dt
import sys

import uvicorn
from airflow import settings
from airflow.api_fastapi.app import create_auth_manager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from airflow.models import import_all_models
from airflow.models.base import Base
from airflow.models.dag import DagModel
from airflow.models.dagbundle import DagBundleModel
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState

import_all_models()
Base.metadata.create_all(settings.engine)
with create_session() as s:  # one paused DAG with one successful run, as the dag-processor and scheduler leave them
    s.add(DagBundleModel(name="dags-folder"))
    s.flush()
    s.add(DagModel(dag_id="churn_scoring", bundle_name="dags-folder", is_paused=True))
    s.flush()
    when = dt.datetime(2026, 1, 22, 4, tzinfo=dt.UTC)
    s.add(DagRun(dag_id="churn_scoring", run_id="scheduled__2026-01-22", logical_date=when, run_after=when,
                 data_interval=(when, when), state=DagRunState.SUCCESS, run_type="scheduled", start_date=when))
print("TOKEN=" + create_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin")), flush=True)
sys.path.insert(0, sys.argv[2])
import churn_ops

uvicorn.run(churn_ops.app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ops_server(ops_config, tmp_path):
    """(base URL, JWT) of the plugin app serving ``ops_config``'s warehouse and registry."""
    config_file = tmp_path / "churn.yaml"
    config_file.write_text(yaml.safe_dump(ops_config.model_dump(mode="json")))
    port = _free_port()
    env = dict(
        os.environ,
        CHURN_CONFIG=str(config_file),
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{tmp_path}/airflow.db",
        AIRFLOW__API_AUTH__JWT_SECRET="browser-test-secret-0123456789abcdef",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PYTHONPATH=str(ROOT),
    )
    env.pop("CHURN_OPS_PAGE_PUBLIC", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), str(ROOT / "plugins")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        token = ""
        for line in proc.stdout:  # Airflow logs to stdout before the token line
            if line.startswith("TOKEN="):
                token = line.strip().split("=", 1)[1]
                break
        assert token, f"no token from the ops page server: {proc.stderr.read()[-3000:]}"
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"ops page server exited: {proc.stderr.read()[-3000:]}")
                time.sleep(0.2)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.slow  # ~16 s of CPU: MLflow store, Airflow tables, uvicorn and Chromium start
@pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium: run scripts/install_system_deps.sh (as root)")
def test_ops_page_in_headless_chromium(ops_server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -c constraints.txt -e '.[dev]'")
    base, token = ops_server
    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context()
            page = context.new_page()
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)

            # logged out: the page sends the browser to Airflow's login, not a JSON error
            logged_out = context.request.get(f"{base}/", max_redirects=0)
            assert logged_out.status == 303 and logged_out.headers["location"].startswith("/auth/login")

            context.add_cookies([{"name": "_token", "value": token, "url": base}])
            page.goto(f"{base}/", wait_until="load", timeout=120_000)  # a loaded CI box: first request imports MLflow
            champion = page.locator("#champion").inner_text()
            assert "version 1" in champion and "(baseline)" in champion
            assert "auto-promotion: first model" in champion
            assert "973" in champion and "973.0" not in champion
            href = page.locator("#champion a").get_attribute("href")
            assert href.startswith("http://localhost:5000/#/experiments/") and "/runs/" in href
            tiers = page.locator("#scoring").inner_text()
            assert tiers.index("low") < tiers.index("medium") < tiers.index("high")
            drift = page.locator("#drift").inner_text()  # the monitor's own decision, word for word
            assert "retrain on 2026-01-22" in drift and "RETRAIN: 1/2 monitored features drifted" in drift
            assert "1 excluded features: reported only, never a retrain reason" in drift
            runs = page.locator("#dag-runs").inner_text()
            assert "churn_scoring" in runs and "success" in runs and "Paused" in runs
            images = page.eval_on_selector_all(
                "img.chart", "els => els.map(e => [e.getAttribute('src'), e.complete && e.naturalWidth > 0])"
            )
            assert {src for src, _ in images} == {
                "charts/tiers.svg",
                "charts/scores.svg",
                "charts/drift.svg",
                "charts/performance.svg",
            }
            assert all(ok for _, ok in images), images
        finally:
            browser.close()
    assert problems == [], problems
