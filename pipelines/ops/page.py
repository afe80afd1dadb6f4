"""The operator page as one HTML document: champion, last scoring run, drift, realised performance, DAG runs.

Values are formatted for people (counts as integers with separators, ratios to three decimals, times to the
minute in UTC, tiers low -> high); charts are ``<img>`` tags pointing at the plugin's SVG endpoints; every value
is escaped. No script and no external stylesheet: the page works offline and inside the Airflow UI's frame.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from pipelines.ops.champion import CANDIDATES

COUNT_NAMES = {"n", "rows", "count", "customers", "current_rows", "reference_rows"}
STATE_CLASS = {"success": "ok", "failed": "bad", "running": "warn", "queued": "warn", "up_for_retry": "warn"}

CSS = """
 body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1f2933; max-width: 1100px; }
 section { border: 1px solid #d9e2ec; border-radius: 8px; padding: 1rem 1.25rem; margin-bottom: 1rem; }
 h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 0; } h3 { font-size: 0.95rem; }
 table { border-collapse: collapse; } td, th { padding: 2px 14px 2px 0; text-align: left; vertical-align: top; }
 td.num { text-align: right; font-variant-numeric: tabular-nums; }
 .ok { color: #2f855a; } .warn { color: #b7791f; } .bad { color: #c53030; } .muted { color: #627d98; }
 code { background: #f0f4f8; } img.chart { max-width: 100%; height: auto; display: block; margin: 0.5rem 0; }
 .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1rem; }
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def fmt_number(value: Any, name: str = "") -> str:
    """``973`` for counts (never ``973.0000``), three decimals for ratios, ``-`` for missing."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (name.split("_")[-1] in COUNT_NAMES or name in COUNT_NAMES):
        try:
            return f"{round(float(value)):,}"
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3f}"
    return str(value)


def fmt_time(value: Any) -> str:
    """An ISO timestamp or datetime as ``2026-01-01 05:00 UTC`` (no microseconds); dates stay dates."""
    if value in (None, ""):
        return "-"
    if isinstance(value, dt.datetime):
        moment = value
    else:
        text = str(value).strip().replace("Z", "+00:00")
        if len(text) == 10:
            return text
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            return text
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _kv(rows: list[tuple[str, str]]) -> str:
    """Rows of (label, already-escaped HTML)."""
    return "<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _message(section: dict[str, Any], default: str = "unavailable") -> str:
    return f"<p class='warn'>{esc(section.get('message', default))}</p>"


def _chart(name: str, section: dict[str, Any], alt: str) -> str:
    if not section.get("available"):
        return _message(section)
    return f"<img class='chart' src='charts/{name}.svg' alt='{esc(alt)}' width='614' height='250'>"


def champion_html(card: dict[str, Any]) -> str:
    if not card.get("available"):
        return f"<section id='champion'><h2>Champion</h2>{_message(card)}</section>"
    run = esc(card.get("run_name") or card.get("run_id"))
    run_link = (
        f"<a href='{esc(card['run_url'])}' target='_blank' rel='noopener'>{run}</a>" if card.get("run_url") else run
    )
    reasons = card.get("gate_reasons")
    rows = [
        (
            "model",
            f"{esc(card.get('name'))} version <b>{esc(card.get('version'))}</b> ({esc(card.get('kind') or 'kind unknown')})",
        ),
        ("trained as of", esc(card.get("as_of") or "-")),
        ("promoted", esc(fmt_time(card.get("promoted_at")))),
        ("why", esc(card.get("promotion_reason") or "-")),
    ]
    if card.get("gate_decision") or reasons:
        rows.append(("promotion gate", esc(" - ".join(x for x in (card.get("gate_decision"), reasons) if x))))
    if card.get("previous_champion"):
        rows.append(("replaced version", esc(card["previous_champion"])))
    rows.append(("MLflow run", run_link))
    body = _kv(rows)
    metrics = card.get("metrics") or []
    if metrics:
        kinds = ["champion", *(k for k in CANDIDATES if any(m.get(k) is not None for m in metrics))]
        head = "<tr><th>test metric</th>" + "".join(f"<th>{esc(k)}</th>" for k in kinds) + "</tr>"
        cells = "".join(
            f"<tr><td>{esc(m['label'])}</td>"
            + "".join(f"<td class='num'>{esc(fmt_number(m.get(k), m['key']))}</td>" for k in kinds)
            + "</tr>"
            for m in metrics
        )
        body += f"<h3>Test metrics (same run, same test customers)</h3><table>{head}{cells}</table>"
    if card.get("details_message"):
        body += _message({"message": card["details_message"]})
    return f"<section id='champion'><h2>Champion</h2>{body}</section>"


def scoring_html(scoring: dict[str, Any], tier_order: list[str], history: dict[str, Any]) -> str:
    if not scoring.get("available"):
        body = _message(scoring)
    else:
        tiers = scoring.get("tiers") or {}
        ordered = [t for t in tier_order if t in tiers] + sorted(set(tiers) - set(tier_order))
        total = sum(tiers.values()) or 1
        tier_rows = "".join(
            f"<tr><td>{esc(t)}</td><td class='num'>{fmt_number(tiers[t], 'n')}</td>"
            f"<td class='num muted'>{100 * tiers[t] / total:.1f}%</td></tr>"
            for t in ordered
        )
        body = _kv(
            [
                ("score date", esc(scoring.get("score_date"))),
                ("customers scored", esc(fmt_number(scoring.get("rows"), "rows"))),
                ("model version", esc(", ".join(scoring.get("model_versions") or []))),
                ("DAG run", esc(", ".join(scoring.get("run_ids") or []))),
                ("scored at", esc(fmt_time(scoring.get("scored_at")))),
            ]
        )
        body += f"<h3>Risk tiers</h3><table>{tier_rows}</table>"
    charts = (
        "<div class='grid'><div><h3>Customers per tier, by scoring day</h3>"
        + _chart("tiers", history.get("tiers") or {}, "customers per risk tier over time")
        + "</div><div><h3>Score distribution, newest day</h3>"
        + _chart("scores", history.get("distribution") or {}, "histogram of churn probabilities")
        + "</div></div>"
    )
    return f"<section id='scoring'><h2>Last scoring run</h2>{body}{charts}</section>"


def verdict_html(v: dict[str, Any]) -> str:
    """The one drift decision: retrain or not and why, monitored features, prediction drift, excluded features."""
    css = "bad" if v.get("retrain") else "ok"
    decision = "retrain" if v.get("retrain") else "no retrain"
    body = (
        f"<p><span class='{css}'><b>{esc(decision)}</b></span> on {esc(v.get('score_date'))} "
        f"(model version {esc(v.get('model_version'))})</p><p>{esc(v.get('headline'))}</p>"
    )
    if v.get("reasons"):
        body += "<h3>Why retrain</h3><ul>" + "".join(f"<li>{esc(r)}</li>" for r in v["reasons"]) + "</ul>"
    monitored = v.get("monitored") or []
    drifted = v.get("drifted_features") or []
    share, share_t = v.get("drift_share"), v.get("drift_share_threshold")
    prediction = v.get("prediction") or {}
    rows = [
        (
            "monitored features drifted",
            esc(f"{len(drifted)} of {len(monitored)}")
            + (f" (share {fmt_number(share)}, threshold {fmt_number(share_t)})" if share is not None else "")
            + (f": {esc(', '.join(drifted))}" if drifted else ""),
        ),
        (
            "prediction drift",
            esc(f"{fmt_number(prediction.get('value'))} (threshold {fmt_number(prediction.get('threshold'))})")
            + (" <span class='bad'>over threshold</span>" if prediction.get("drifted") else ""),
        ),
    ]
    realized = v.get("realized")
    if realized:
        rows.append(
            (
                "realised PR AUC",
                esc(f"{fmt_number(realized.get('pr_auc'))} (minimum {fmt_number(realized.get('min_pr_auc'))})"),
            )
        )
    if v.get("reference"):
        rows.append(("compared with", esc(v["reference"])))
    body += _kv(rows)
    excluded = v.get("excluded") or []
    if excluded:
        items = "".join(
            f"<li>{esc(f['name'])}{' (moved)' if f.get('drifted') else ''}: {esc(f.get('reason') or 'excluded')}</li>"
            for f in excluded
        )
        body += (
            f"<details><summary>{len(excluded)} excluded features: reported only, never a retrain reason"
            f"</summary><ul>{items}</ul></details>"
        )
    return body


def drift_html(
    drift: dict[str, Any], history: dict[str, Any], report_href: str | None, verdict: dict[str, Any] | None = None
) -> str:
    if verdict and verdict.get("available"):
        body = verdict_html(verdict)
        if report_href:
            body += f"<p><a href='{esc(report_href)}' target='_blank' rel='noopener'>Open the drift report</a></p>"
    elif not drift.get("available"):
        body = _message(drift)
    else:
        verdict = drift.get("verdict") or (
            "drift detected" if drift.get("drifted") else "no drift"
        )  # the drift decision's own wording when the library provides one
        css = "bad" if drift.get("drifted") else "ok"
        body = (
            f"<p><span class='{css}'><b>{esc(verdict)}</b></span> on {esc(drift.get('score_date'))} "
            f"(model version {esc(drift.get('model_version'))})</p>"
        )
        rows = []
        for m in drift.get("metrics") or []:
            threshold = m.get("threshold")
            text = fmt_number(m.get("value"), m.get("metric", ""))
            if threshold is not None:
                text += f" (threshold {fmt_number(threshold, m.get('metric', ''))})"
            flag = " <span class='bad'>over threshold</span>" if m.get("drifted") else ""
            rows.append((str(m.get("metric")), esc(text) + flag))
        if rows:
            body += _kv(rows)
        if drift.get("drifted_features"):
            body += (
                f"<p>Drifted features ({len(drift['drifted_features'])} of {esc(drift.get('features_checked'))} "
                f"checked): {esc(', '.join(drift['drifted_features']))}</p>"
            )
        if report_href:
            body += f"<p><a href='{esc(report_href)}' target='_blank' rel='noopener'>Open the drift report</a></p>"
    body += "<h3>Drift by monitoring day</h3>" + _chart("drift", history.get("drift") or {}, "drift metrics over time")
    return f"<section id='drift'><h2>Drift</h2>{body}</section>"


def performance_html(history: dict[str, Any]) -> str:
    section = history.get("performance") or {}
    body = _chart("performance", section, "realised performance over time")
    if section.get("available"):
        n = [v for v in section["metrics"].get("n") or [] if v is not None]
        if n:
            body += f"<p class='muted'>{len(section['dates'])} scoring days evaluated, {fmt_number(n[-1], 'n')} customers on the latest.</p>"
    return f"<section id='performance'><h2>Realised performance (as labels mature)</h2>{body}</section>"


def dag_runs_html(dag_runs: dict[str, Any]) -> str:
    if not dag_runs.get("available", True) or "dags" not in dag_runs:
        return f"<section id='dag-runs'><h2>Recent DAG runs</h2>{_message(dag_runs)}</section>"
    parts = []
    for dag_id, runs in dag_runs["dags"].items():
        if not runs:
            parts.append(f"<tr><td>{esc(dag_id)}</td><td colspan='4' class='muted'>no runs yet</td></tr>")
        for i, run in enumerate(runs):
            state = str(run.get("state") or "-")
            parts.append(
                f"<tr><td>{esc(dag_id) if i == 0 else ''}</td><td>{esc(run.get('logical_date') or '-')}</td>"
                f"<td class='{STATE_CLASS.get(state, '')}'>{esc(state)}</td><td>{esc(fmt_time(run.get('start_date')))}</td>"
                f"<td class='muted'>{esc(run.get('run_id'))}</td></tr>"
            )
    head = "<tr><th>DAG</th><th>date</th><th>state</th><th>started</th><th>run id</th></tr>"
    paused = dag_runs.get("paused") or []
    note = f"<p class='muted'>Paused (the scheduler will not run them): {esc(', '.join(paused))}</p>" if paused else ""
    return f"<section id='dag-runs'><h2>Recent DAG runs</h2><table>{head}{''.join(parts)}</table>{note}</section>"


def render_page(
    summary: dict[str, Any],
    champion: dict[str, Any],
    history: dict[str, Any],
    dag_runs: dict[str, Any],
    *,
    tier_order: list[str],
    verdict: dict[str, Any] | None = None,
) -> str:
    drift = summary.get("drift") or {}
    report_href = f"reports/drift/{drift['score_date']}" if drift.get("report_available") else None
    body = (
        f"<h1>Churn model: {esc(summary.get('model_name'))}</h1>"
        + champion_html(champion)
        + scoring_html(summary.get("scoring") or {}, tier_order, history)
        + drift_html(drift, history, report_href, verdict)
        + performance_html(history)
        + dag_runs_html(dag_runs)
        + f"<p class='muted'><small>generated {esc(fmt_time(summary.get('generated_at')))}</small></p>"
    )
    return page("Churn model", body)


def page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<link rel='icon' href='data:,'><style>{CSS}</style></head><body>{body}</body></html>"
    )
