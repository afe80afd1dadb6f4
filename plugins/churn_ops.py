"""Airflow 3 plugin: a "Churn model" page for operators.

It mounts a small FastAPI app on the API server at ``/churn`` (``fastapi_apps``) and adds it to the
UI's navigation as an embedded view (``external_views``). The page shows the ``@champion`` model
version and its metrics, the last scoring run (rows, risk-tier counts) and the last drift status
with a link to the Evidently report. Data comes from ``pipelines.reporting``; every section degrades
to a message (never a 500) when the champion, the warehouse or a report is missing.

Endpoints: ``/churn/`` (HTML), ``/churn/api/summary`` (JSON), ``/churn/reports/drift/<date>`` (report).
They require an authenticated Airflow user (the UI's session cookie or a Bearer token); set
``CHURN_OPS_PAGE_PUBLIC=1`` to serve them without authentication (local demos only).
"""

from __future__ import annotations

import html
import os
from typing import Any

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
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


def create_app() -> FastAPI:
    app = FastAPI(
        title="Churn model operations",
        description="Champion model, last scoring run and drift status of the churn platform.",
    )
    auth = _require_user()
    dependencies = [Depends(auth)] if auth is not None else []

    @app.exception_handler(StarletteHTTPException)
    async def login_redirect(request: Request, exc: StarletteHTTPException):
        """A logged-out browser on the page goes to Airflow's login and comes back; the JSON API keeps its 401."""
        if exc.status_code in (401, 403) and not request.url.path.rstrip("/").endswith(("/api/summary", "/health")):
            return RedirectResponse(_login_url(str(request.url)), status_code=303)
        return await http_exception_handler(request, exc)

    @app.get("/", response_class=HTMLResponse, dependencies=dependencies)
    def ops_page() -> HTMLResponse:
        from pipelines.reporting import ops_summary

        try:
            summary = ops_summary(_load_config())
        except Exception as exc:  # e.g. a broken config file: still a page, not a 500
            return HTMLResponse(
                _page("Churn model", f"<p class='warn'>Cannot load the churn config: {html.escape(str(exc))}</p>")
            )
        return HTMLResponse(render_summary(summary))

    @app.get("/api/summary", dependencies=dependencies)
    def summary_json() -> JSONResponse:
        from pipelines.reporting import ops_summary

        try:
            return JSONResponse(ops_summary(_load_config()))
        except Exception as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)

    @app.get("/reports/drift/{score_date}", dependencies=dependencies)
    def drift_report(score_date: str) -> FileResponse:
        from pipelines.reporting import drift_report_path

        path = drift_report_path(_load_config(), score_date)
        if path is None:
            raise HTTPException(status_code=404, detail=f"no drift report for {score_date}")
        return FileResponse(path, media_type="text/html")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    return app


def _page(title: str, body: str) -> str:
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
 body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #1f2933; }}
 section {{ border: 1px solid #d9e2ec; border-radius: 8px; padding: 1rem 1.25rem; margin-bottom: 1rem; }}
 h1 {{ font-size: 1.4rem; }} h2 {{ font-size: 1.1rem; margin-top: 0; }}
 table {{ border-collapse: collapse; }} td, th {{ padding: 2px 12px 2px 0; text-align: left; }}
 .ok {{ color: #2f855a; }} .warn {{ color: #b7791f; }} .bad {{ color: #c53030; }} code {{ background: #f0f4f8; }}
</style></head><body>{body}</body></html>"""


def _kv_table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def render_summary(summary: dict[str, Any]) -> str:
    """The operator page as HTML (every value escaped)."""
    parts = [f"<h1>Churn model: {html.escape(str(summary.get('model_name', '')))}</h1>"]

    champ = summary.get("champion") or {}
    if champ.get("available"):
        rows = [
            ("version", champ["version"]),
            ("MLflow run", champ["run_id"]),
            ("model URI", champ.get("model_uri", "")),
        ]
        metrics = champ.get("metrics") or {}
        body = _kv_table(rows)
        if metrics:
            body += "<h3>Metrics</h3>" + _kv_table([(k, _fmt(v)) for k, v in metrics.items()])
        elif champ.get("metrics_message"):
            body += f"<p class='warn'>{html.escape(champ['metrics_message'])}</p>"
        parts.append(f"<section><h2>Champion</h2>{body}</section>")
    else:
        parts.append(
            f"<section><h2>Champion</h2><p class='warn'>{html.escape(champ.get('message', 'unknown'))}</p></section>"
        )

    scoring = summary.get("scoring") or {}
    if scoring.get("available"):
        body = _kv_table(
            [
                ("score date", scoring["score_date"]),
                ("rows", scoring["rows"]),
                ("model version", ", ".join(scoring.get("model_versions") or [])),
                ("run id", ", ".join(scoring.get("run_ids") or [])),
                ("scored at", scoring.get("scored_at")),
            ]
        )
        body += "<h3>Risk tiers</h3>" + _kv_table(list((scoring.get("tiers") or {}).items()))
        parts.append(f"<section><h2>Last scoring run</h2>{body}</section>")
    else:
        parts.append(
            f"<section><h2>Last scoring run</h2><p class='warn'>{html.escape(scoring.get('message', 'unknown'))}</p></section>"
        )

    drift = summary.get("drift") or {}
    if drift.get("available"):
        status = (
            "<span class='bad'>drift detected</span>" if drift.get("drifted") else "<span class='ok'>no drift</span>"
        )
        body = f"<p>{status} on {html.escape(drift['score_date'])} (model version {html.escape(str(drift.get('model_version')))})</p>"
        if drift.get("metrics"):
            body += _kv_table(
                [
                    (
                        m["metric"],
                        f"{_fmt(m['value'])} (threshold {_fmt(m['threshold'])})" + (" DRIFTED" if m["drifted"] else ""),
                    )
                    for m in drift["metrics"]
                ]
            )
        if drift.get("drifted_features"):
            body += (
                f"<p>Drifted features ({len(drift['drifted_features'])}/{drift.get('features_checked')}): "
                f"{html.escape(', '.join(drift['drifted_features']))}</p>"
            )
        if drift.get("report_available"):
            href = f"reports/drift/{html.escape(drift['score_date'])}"
            body += f"<p><a href='{href}' target='_blank'>Open the drift report</a></p>"
        elif drift.get("report_path"):
            body += f"<p>Report: <code>{html.escape(drift['report_path'])}</code></p>"
        parts.append(f"<section><h2>Last drift check</h2>{body}</section>")
    else:
        parts.append(
            f"<section><h2>Last drift check</h2><p class='warn'>{html.escape(drift.get('message', 'unknown'))}</p></section>"
        )

    parts.append(f"<p><small>generated {html.escape(str(summary.get('generated_at', '')))}</small></p>")
    return _page("Churn model", "".join(parts))


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
