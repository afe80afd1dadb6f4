"""The retention HTML report of one measured action date (offline: images embedded as PNG data URIs).

Panels: uplift per action vs the holdout with 95% CIs; the policies' off-policy values by estimator;
and, when a learned policy made the decisions, its Qini curve per action, the measured uplift by decile
of predicted uplift, and the estimated profit (DR) against the share of customers targeted.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from pipelines.retention.assign import BUDGET_REASON
from pipelines.retention.effects import (
    _action_index,
    eligibility_matrix,
    fit_outcome_model,
    load_measured,
    off_policy_values,
    qini_curve,
)
from pipelines.validation.html import run_facts, stamp_file

if TYPE_CHECKING:
    from pipelines.config import Config

logger = logging.getLogger(__name__)


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _effects_figure(rows: list[dict]) -> Figure:
    effects = [r for r in rows if r["kind"] == "action_effect"]
    fig = Figure(figsize=(5, 3))
    ax = fig.subplots()
    y = np.arange(len(effects))
    up = np.array([r["uplift"] for r in effects])
    err = np.array([[r["uplift"] - r["ci_low"], r["ci_high"] - r["uplift"]] for r in effects]).T
    ax.errorbar(up, y, xerr=err, fmt="o", capsize=4)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(y, [r["action"] for r in effects])
    ax.set_xlabel("retention uplift vs holdout (95% CI)")
    return fig


def _values_figure(rows: list[dict]) -> Figure:
    values = [r for r in rows if r["kind"] == "policy_value" and r["estimator"] in ("ips", "snips", "dr")]
    policies = sorted({r["action"] for r in values})
    fig = Figure(figsize=(6, 3))
    ax = fig.subplots()
    for i, estimator in enumerate(("ips", "snips", "dr")):
        sel = {r["action"]: r for r in values if r["estimator"] == estimator}
        xs = np.arange(len(policies)) + (i - 1) * 0.25
        vals = np.array([sel[p]["uplift"] for p in policies])
        err = np.array(
            [[sel[p]["uplift"] - sel[p]["ci_low"], sel[p]["ci_high"] - sel[p]["uplift"]] for p in policies]
        ).T
        ax.bar(xs, vals, width=0.25, yerr=err, capsize=3, label=estimator)
    ax.set_xticks(np.arange(len(policies)), policies)
    ax.set_ylabel("net value per customer")
    ax.legend(fontsize=8)
    return fig


def _policy_figures(config: Config, frame, policy) -> list[tuple[str, Figure]]:
    tau, net = policy.predict(frame)
    names = config.retention.action_names
    figures = []
    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    deciles = Figure(figsize=(5, 3.2))
    ax_d = deciles.subplots()
    for j, action in enumerate(names[1:], start=1):
        eligible = frame["eligible_actions"].str.split(",").apply(lambda s, a=action: a in s)
        treated = frame["group"].eq("explore") & frame["action"].eq(action)
        control = frame["group"].eq("holdout") & eligible
        mask = (treated | control).to_numpy()
        if treated.sum() < 20 or control.sum() < 20:
            continue
        score = tau[mask, j]
        share, q = qini_curve(score, frame.loc[mask, "retained"].to_numpy(), treated.to_numpy()[mask])
        ax.plot(share, q, label=action)
        ax.plot([0, 1], [0, q[-1]], ls=":", color=ax.lines[-1].get_color(), lw=0.8)
        y = frame.loc[mask, "retained"].to_numpy()
        t = treated.to_numpy()[mask]
        edges = np.quantile(score, np.linspace(0, 1, 11))
        index = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, 9)
        lifts = [
            y[(index == d) & t].mean() - y[(index == d) & ~t].mean()
            if ((index == d) & t).any() and ((index == d) & ~t).any()
            else np.nan
            for d in range(10)
        ]
        ax_d.plot(np.arange(1, 11), lifts[::-1], marker="o", label=action)
    ax.set_xlabel("share targeted (by predicted uplift)")
    ax.set_ylabel("incremental retained per customer")
    ax.set_title("Qini curves (dotted: random targeting)")
    ax.legend(fontsize=8)
    ax_d.axhline(0, color="grey", lw=0.8)
    ax_d.set_xlabel("decile of predicted uplift (1 = highest)")
    ax_d.set_ylabel("measured uplift")
    ax_d.legend(fontsize=8)
    figures += [("Qini curves", fig), ("Uplift by decile", deciles)]

    logged = frame[frame["group"].ne("holdout") & frame["reason"].ne(BUDGET_REASON)].reset_index(drop=True)
    if len(logged) >= 50:
        keep = (frame["group"].ne("holdout") & frame["reason"].ne(BUDGET_REASON)).to_numpy()
        eligible = eligibility_matrix(config, logged)
        best_net = np.where(eligible, net[keep], -np.inf)
        best_net[:, 0] = 0.0
        best = best_net.argmax(axis=1)
        priority = best_net.max(axis=1)
        q = fit_outcome_model(config, logged)
        a = _action_index(config, logged["action"])
        p = logged["propensity"].to_numpy(dtype=np.float64)
        r = logged["net_value"].to_numpy(dtype=np.float64)
        shares = np.linspace(0, 1, 11)
        order = np.argsort(-priority, kind="stable")
        values = []
        for share in shares:
            chosen = np.zeros(len(logged), dtype=np.int64)
            top = order[: int(round(share * len(logged)))]
            chosen[top] = best[top]
            values.append(off_policy_values(np.eye(len(names))[chosen], a, p, r, q)["dr"])
        profit = Figure(figsize=(5, 3.2))
        ax_p = profit.subplots()
        mid = np.array([v[0] for v in values])
        ax_p.fill_between(shares, [v[1] for v in values], [v[2] for v in values], alpha=0.25)
        ax_p.plot(shares, mid, marker="o")
        ax_p.set_xlabel("share targeted (by expected net value)")
        ax_p.set_ylabel("net value per customer (DR, 95% CI)")
        figures.append(("Profit vs share targeted", profit))
    return figures


def write_report(config: Config, wh, action_date: dt.date, rows: list[dict[str, Any]], policy=None) -> Path:
    """Write ``<reports_dir>/<action_date>.html`` and return its path."""
    figures = [("Uplift per action", _effects_figure(rows)), ("Policy values", _values_figure(rows))]
    if policy is not None:
        try:
            figures += _policy_figures(config, load_measured(wh, action_date), policy)
        except Exception as exc:  # the figures are a view; a failure must not lose the measured effects
            logger.warning("retention report %s: policy figures skipped: %s", action_date, exc)
    header = ["kind", "action", "estimator", "n", "uplift", "ci_low", "ci_high", "revenue_uplift", "net_value"]

    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else html.escape(str(value if value is not None else ""))

    table = "".join("<tr>" + "".join(f"<td>{cell(r.get(h))}</td>" for h in header) + "</tr>" for r in rows)
    body = "".join(f"<h2>{html.escape(title)}</h2><img src='{_png(fig)}'/>" for title, fig in figures)
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Retention {action_date}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;border-bottom:1px solid #ddd}</style>"
        f"</head><body><h1>Retention effects, action date {action_date}</h1>"
        f"<p>Horizon {config.retention.horizon_days} days; effects against the permanent holdout "
        f"({config.retention.holdout_share:.0%}); policy {html.escape(policy.version if policy else 'rules')}.</p>"
        f"{body}<h2>All figures</h2><table><tr>{''.join(f'<th>{h}</th>' for h in header)}</tr>{table}</table>"
        "</body></html>"
    )
    path = config.resolve_path(config.retention.reports_dir) / f"{action_date.isoformat()}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    facts = {"action date": action_date.isoformat(), "policy": policy.version if policy else "rules", **run_facts()}
    stamp_file(path, f"Retention effects, action date {action_date}", facts)
    logger.info("retention report: %s", path)
    return path
