"""Airflow 3 plugin: a "Churn model" page for operators.

It mounts a small FastAPI app on the API server at ``/churn`` (``fastapi_apps``) and adds it to the
UI's navigation as an embedded view (``external_views``). The page shows the ``@champion`` model (kind,
version, when and why promoted, test metrics, a link to its MLflow run), the last scoring run with tier
counts over time and the score distribution, drift over time, realised performance as labels mature and
the last runs of each churn DAG. Data and HTML come from ``pipelines.ops`` / ``pipelines.ops.status`` (no
Airflow there); only the DAG runs are read here, from Airflow's metadata DB. Charts are SVG drawn on the
server. Every section degrades to a message (never a 500) when something is missing.

Endpoints: ``/churn/`` (HTML), ``/churn/charts/<tiers|scores|drift|performance>.svg``, ``/churn/api/summary``
(JSON), ``/churn/reports/drift/<date>`` (report). They require an authenticated Airflow user (the UI's session
cookie or a Bearer token; a logged-out browser is sent to the login page); set ``CHURN_OPS_PAGE_PUBLIC=1`` to
serve them without authentication (local demos only).
"""

from __future__ import annotations

import html
import os
import threading
import time
from typing import Any

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

URL_PREFIX = "/churn"


def _require_user() -> Any:
    """FastAPI dependency: an authenticated Airflow user, unless the page is explicitly public."""
    if os.environ.get("CHURN_OPS_PAGE_PUBLIC", "").lower() in {"1", "true", "yes"}:
        return None
    from airflow.api_fastapi.core_api.security import requires_authenticated

    return requires_authenticated()


def _login_url(next_url: str) -> str:
    """The auth manager's login page with a way back (``/auth/login/?next=...`` for the simple auth manager)."""
    try:
        from airflow.api_fastapi.app import get_auth_manager

        return get_auth_manager().get_url_login(next_url=next_url)
    except Exception:  # no auth manager initialised (a bare test app): Airflow's default login route
        from urllib.parse import urlencode

        return "/auth/login/?" + urlencode({"next": next_url})


def _load_config():
    from pipelines.config import load_config

    return load_config()


def dag_runs(limit: int = 5) -> dict[str, Any]:
    """The last ``limit`` runs of each churn DAG from Airflow's metadata DB, and which DAGs are paused."""
    try:
        from airflow.models.dag import DagModel
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            dags = session.scalars(select(DagModel).where(DagModel.dag_id.like("churn%")).order_by(DagModel.dag_id))
            out: dict[str, list] = {}
            paused = []
            for dag in dags:
                if dag.is_paused:
                    paused.append(dag.dag_id)
                runs = session.scalars(
                    select(DagRun).where(DagRun.dag_id == dag.dag_id).order_by(DagRun.id.desc()).limit(limit)
                )
                out[dag.dag_id] = [
                    {
                        "run_id": r.run_id,
                        "logical_date": str(r.logical_date)[:10] if r.logical_date else None,
                        "state": str(getattr(r.state, "value", r.state)),
                        "start_date": r.start_date.isoformat() if r.start_date else None,
                    }
                    for r in runs
                ]
        if not out:
            return {"available": False, "message": "No churn DAGs in Airflow yet (the dag-processor parses dags/)."}
        return {"available": True, "dags": out, "paused": paused}
    except Exception as exc:  # no metadata DB (a bare app in a test), or a schema mismatch
        return {"available": False, "message": f"Airflow's DAG runs are unavailable ({type(exc).__name__})."}


class _HistoryCache:
    """The page and its four chart requests arrive together: read the warehouse once per few seconds."""

    ttl_s = 5.0

    def __init__(self) -> None:
        self._value: tuple[float, dict] | None = None
        self._lock = threading.Lock()

    def get(self, config) -> dict[str, Any]:
        from pipelines.ops.history import ops_history

        with self._lock:
            if self._value and time.monotonic() - self._value[0] < self.ttl_s:
                return self._value[1]
            history = ops_history(config)
            self._value = (time.monotonic(), history)
            return history


def create_app() -> FastAPI:
    app = FastAPI(
        title="Churn model operations",
        description="Champion model, scoring runs, drift and realised performance of the churn platform.",
    )
    auth = _require_user()
    dependencies = [Depends(auth)] if auth is not None else []
    history_cache = _HistoryCache()

    @app.exception_handler(StarletteHTTPException)
    async def login_redirect(request: Request, exc: StarletteHTTPException):
        """A logged-out browser on the page goes to Airflow's login and comes back; the JSON API keeps its 401."""
        if exc.status_code in (401, 403) and not request.url.path.rstrip("/").endswith(("/api/summary", "/health")):
            return RedirectResponse(_login_url(str(request.url)), status_code=303)
        return await http_exception_handler(request, exc)

    @app.get("/", response_class=HTMLResponse, dependencies=dependencies)
    def ops_page() -> HTMLResponse:
        from pipelines.ops.champion import champion_card
        from pipelines.ops.drift import drift_card
        from pipelines.ops.history import tier_order
        from pipelines.ops.page import page, render_page
        from pipelines.ops.status import ops_summary

        try:
            config = _load_config()
        except Exception as exc:  # e.g. a broken config file: still a page, not a 500
            return HTMLResponse(
                page("Churn model", f"<p class='warn'>Cannot load the churn config: {html.escape(str(exc))}</p>")
            )
        return HTMLResponse(
            render_page(
                ops_summary(config),
                champion_card(config),
                history_cache.get(config),
                dag_runs(),
                tier_order=tier_order(config),
                verdict=drift_card(config),
            )
        )

    @app.get("/charts/{name}.svg", dependencies=dependencies)
    def chart(name: str) -> Response:
        from pipelines.ops.charts import render_chart

        svg = render_chart(name, history_cache.get(_load_config()))
        if svg is None:
            raise HTTPException(status_code=404, detail=f"no data for chart {name!r}")
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

    @app.get("/api/summary", dependencies=dependencies)
    def summary_json() -> JSONResponse:
        from pipelines.ops.champion import champion_card
        from pipelines.ops.drift import drift_card
        from pipelines.ops.status import ops_summary

        try:
            config = _load_config()
            summary = ops_summary(config)
            summary["champion_card"] = champion_card(config)
            summary["drift_verdict"] = drift_card(config)
            summary["history"] = history_cache.get(config)
            return JSONResponse(summary)
        except Exception as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)

    @app.get("/reports/drift/{score_date}", dependencies=dependencies)
    def drift_report(score_date: str) -> FileResponse:
        from pipelines.ops.status import drift_report_path

        path = drift_report_path(_load_config(), score_date)
        if path is None:
            raise HTTPException(status_code=404, detail=f"no drift report for {score_date}")
        return FileResponse(path, media_type="text/html")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    return app


app = create_app()


class ChurnOpsPlugin(AirflowPlugin):
    """Registers the churn operations page with the Airflow 3 API server and UI."""

    name = "churn_ops"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Churn model operations"}]
    # An embedded view in the UI navigation; href is relative (no leading slash) so it works behind a proxy.
    external_views = [
        {
            "name": "Churn model",
            "href": "churn/",
            "url_route": "churn-model",
            "destination": "nav",
            "category": "browse",
        }
    ]
