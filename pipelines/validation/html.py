"""Offline, self-describing HTML reports: no external script or stylesheet, and a banner saying what the page
is about (as-of date, DAG run, model version).

Great Expectations' Data Docs load Bootstrap, jQuery and bootstrap-table from public CDNs, so offline (or
behind a proxy) the index draws two buttons and no results. Here the CDN tags are removed from every page,
a small inline stylesheet stands in for Bootstrap, and the index is our own static table of validations
(kept in ``validations.json`` next to it, one row per table and as-of date). The same helpers stamp the
Evidently drift report and the retention report, which live in higher packages and import them from here.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

EXTERNAL_SCRIPT = re.compile(r"<script\b[^>]*\bsrc\s*=\s*['\"]?\s*(?:https?:)?//[^>]*>.*?</script\s*>", re.I | re.S)
EXTERNAL_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*['\"]?\s*(?:https?:)?//[^>]*>", re.I)
EXTERNAL_IMAGE = re.compile(r"<img\b[^>]*\bsrc\s*=\s*['\"]?\s*(?:https?:)?//[^>]*>", re.I)
ANY_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.I | re.S)
MANIFEST = "validations.json"
BANNER_ID = "churn-report-context"

FALLBACK_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1f2933; }
table { border-collapse: collapse; margin: 0.5rem 0; } td, th { border: 1px solid #d9e2ec; padding: 3px 8px; text-align: left; vertical-align: top; }
.ok, .text-success { color: #2f855a; } .bad, .text-danger { color: #c53030; } .muted { color: #627d98; }
nav, .navbar, .sticky { position: static !important; } img { max-width: 240px; }
"""


def external_asset_refs(text: str) -> list[str]:
    """The ``<script src=http(s)://...>`` and ``<link href=http(s)://...>`` tags of a page (offline breakage)."""
    return [m.group(0)[:200] for m in (*EXTERNAL_SCRIPT.finditer(text), *EXTERNAL_LINK.finditer(text))]


def run_context() -> dict[str, str]:
    """The Airflow DAG and run a task is running in (Airflow sets ``AIRFLOW_CTX_*`` in task processes); empty
    outside Airflow, e.g. from the CLI."""
    out = {}
    for key, env in (("dag_id", "AIRFLOW_CTX_DAG_ID"), ("dag_run_id", "AIRFLOW_CTX_DAG_RUN_ID")):
        if os.environ.get(env):
            out[key] = os.environ[env]
    return out


def run_facts() -> dict[str, str]:
    """:func:`run_context` labelled for a report banner ({"DAG": ..., "DAG run": ...})."""
    context = run_context()
    return {label: context[key] for key, label in (("dag_id", "DAG"), ("dag_run_id", "DAG run")) if key in context}


def banner(title: str, facts: dict[str, Any]) -> str:
    items = " &middot; ".join(
        f"<span><b>{html.escape(str(k))}</b> {html.escape(str(v))}</span>"
        for k, v in facts.items()
        if v not in (None, "")
    )
    return (
        f"<div id='{BANNER_ID}' style='font-family:system-ui,sans-serif;padding:10px 16px;background:#f0f4f8;"
        f"border-bottom:1px solid #d9e2ec;color:#1f2933'><div style='font-size:1.2rem;font-weight:600'>"
        f"{html.escape(title)}</div><div style='font-size:0.9rem;margin-top:4px'>{items}</div></div>"
    )


def stamp(text: str, title: str, facts: dict[str, Any], *, strip_scripts: bool = False) -> str:
    """``text`` with its external scripts/stylesheets removed (all scripts if ``strip_scripts``), ``<title>``
    set and a context banner at the top of the body. Idempotent: a second stamp replaces the first banner."""
    text = EXTERNAL_SCRIPT.sub("", text)
    text = EXTERNAL_LINK.sub("", text)
    if strip_scripts:
        text = EXTERNAL_IMAGE.sub("", ANY_SCRIPT.sub("", text))
    text = re.sub(rf"<div id='{BANNER_ID}'.*?</div></div>", "", text, flags=re.S)
    safe_title = html.escape(title)
    if re.search(r"<title>.*?</title>", text, flags=re.S | re.I):
        text = re.sub(r"<title>.*?</title>", lambda _: f"<title>{safe_title}</title>", text, count=1, flags=re.S | re.I)
    elif re.search(r"<head[^>]*>", text, flags=re.I):
        text = re.sub(
            r"(<head[^>]*>)", lambda m: m.group(1) + f"<title>{safe_title}</title>", text, count=1, flags=re.I
        )
    block = banner(title, facts)
    if re.search(r"<body[^>]*>", text, flags=re.I):
        return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + block, text, count=1, flags=re.I)
    return block + text


def stamp_file(path: str | Path, title: str, facts: dict[str, Any], *, strip_scripts: bool = False) -> None:
    """Stamp an HTML file in place (written to a temporary file, then renamed: readers never see half a page)."""
    path = Path(path)
    text = stamp(path.read_text(encoding="utf-8"), title, facts, strip_scripts=strip_scripts)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def finish_data_docs(data_docs_dir: Path, as_of: dt.date, per_table: dict[str, dict[str, int]], run_name: str) -> Path:
    """Make the Data Docs site work offline and say what each page is: stamp this run's validation pages,
    record them in the manifest and write a static index. Returns the index path."""
    context = run_context()
    manifest_path = data_docs_dir / MANIFEST
    try:
        rows = json.loads(manifest_path.read_text()) if manifest_path.is_file() else []
    except ValueError:
        rows = []
    rows = [r for r in rows if not (r.get("as_of") == as_of.isoformat() and r.get("table") in per_table)]
    for table, stats in per_table.items():
        pages = sorted(
            (data_docs_dir / "validations" / table / run_name).rglob("*.html"), key=lambda p: p.stat().st_mtime
        )
        page = pages[-1] if pages else None
        facts = {"as of": as_of.isoformat(), "DAG": context.get("dag_id"), "DAG run": context.get("dag_run_id")}
        facts["result"] = f"{stats['evaluated'] - stats['failed']}/{stats['evaluated']} expectations met"
        if page is not None:
            stamp_file(page, f"Validation of {table} as of {as_of.isoformat()}", facts, strip_scripts=True)
            _add_fallback_css(page)
        rows.append(
            {
                "table": table,
                "as_of": as_of.isoformat(),
                "evaluated": stats["evaluated"],
                "failed": stats["failed"],
                "dag_run_id": context.get("dag_run_id"),
                "page": page.relative_to(data_docs_dir).as_posix() if page else None,
                "validated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            }
        )
    rows.sort(key=lambda r: (r["as_of"], r["table"]), reverse=True)
    tmp = manifest_path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(rows, indent=1))
    tmp.replace(manifest_path)
    index = data_docs_dir / "index.html"
    tmp = index.with_name(".index.html.tmp")
    tmp.write_text(_index_html(rows, as_of, context), encoding="utf-8")
    tmp.replace(index)
    _strip_other_pages(data_docs_dir)
    return index


def _add_fallback_css(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    if "churn-fallback-css" not in text:
        text = re.sub(
            r"(</head>)", f"<style id='churn-fallback-css'>{FALLBACK_CSS}</style>\\1", text, count=1, flags=re.I
        )
        page.write_text(text, encoding="utf-8")


def _strip_other_pages(data_docs_dir: Path) -> None:
    """Expectation-suite pages and older runs' pages: CDN tags out, so no page of the site reaches the internet."""
    for page in data_docs_dir.rglob("*.html"):
        text = page.read_text(encoding="utf-8", errors="replace")
        if external_asset_refs(text):
            text = ANY_SCRIPT.sub("", EXTERNAL_LINK.sub("", EXTERNAL_SCRIPT.sub("", text)))
            page.write_text(EXTERNAL_IMAGE.sub("", text), encoding="utf-8")


def _index_html(rows: list[dict[str, Any]], as_of: dt.date, context: dict[str, str]) -> str:
    def cell(row: dict[str, Any]) -> str:
        ok = row["failed"] == 0
        label = "passed" if ok else f"{row['failed']} failed"
        status = f"<span class='{'ok' if ok else 'bad'}'>{label}</span>"
        name = html.escape(row["table"])
        link = f"<a href='{html.escape(row['page'])}'>{name}</a>" if row.get("page") else name
        return (
            f"<tr><td>{html.escape(row['as_of'])}</td><td>{link}</td><td>{status}</td>"
            f"<td>{row['evaluated'] - row['failed']}/{row['evaluated']}</td>"
            f"<td class='muted'>{html.escape(row.get('dag_run_id') or 'CLI')}</td>"
            f"<td class='muted'>{html.escape(row.get('validated_at') or '')}</td></tr>"
        )

    head = "<tr><th>as of</th><th>table</th><th>result</th><th>expectations met</th><th>DAG run</th><th>validated</th></tr>"
    facts = {"latest as of": as_of.isoformat(), "DAG": context.get("dag_id"), "DAG run": context.get("dag_run_id")}
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Data validation (Great Expectations)"
        f"</title><style>{FALLBACK_CSS}</style></head><body>"
        + banner("Data validation of the raw tables (Great Expectations)", facts)
        + f"<table>{head}{''.join(cell(r) for r in rows)}</table>"
        "<p class='muted'>One row per table and as-of date; the pages hold every expectation and its result.</p>"
        "</body></html>"
    )
