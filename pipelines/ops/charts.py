"""Server-side SVG charts for the operator page (matplotlib, no browser-side library, nothing from a CDN).

Each function takes one section of :func:`pipelines.ops.history.ops_history` and returns an SVG document, or
None when the section has nothing to draw (the page shows the section's message instead).
"""

from __future__ import annotations

import io
from typing import Any

TIER_COLOURS = {"low": "#2f855a", "medium": "#d69e2e", "high": "#c53030"}
OTHER_COLOURS = ("#4a5568", "#805ad5", "#3182ce", "#dd6b20")
SIZE = (6.4, 2.6)


def _figure():
    from matplotlib.figure import Figure  # no pyplot: thread-safe in the API server, no GUI backend

    fig = Figure(figsize=SIZE, dpi=96)
    ax = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=8)
    return fig, ax


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.tight_layout()
    fig.savefig(buf, format="svg", metadata={"Date": None})  # no timestamp: same data, same bytes
    return buf.getvalue()


def _date_ticks(ax, dates: list[str]) -> None:
    step = max(1, len(dates) // 8)
    ticks = list(range(0, len(dates), step))
    ax.set_xticks(ticks, [dates[i] for i in ticks], rotation=0)


def tier_chart(section: dict[str, Any]) -> str | None:
    """Customers per risk tier for each scoring day, stacked low -> high."""
    if not section.get("available"):
        return None
    dates, tiers = section["dates"], section["tiers"]
    fig, ax = _figure()
    bottom = [0] * len(dates)
    for i, (tier, counts) in enumerate(tiers.items()):
        colour = TIER_COLOURS.get(tier, OTHER_COLOURS[i % len(OTHER_COLOURS)])
        ax.bar(range(len(dates)), counts, bottom=bottom, color=colour, label=tier, width=0.8)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    _date_ticks(ax, dates)
    ax.set_ylabel("customers", fontsize=8)
    ax.legend(fontsize=8, frameon=False, ncols=len(tiers), loc="upper left", bbox_to_anchor=(0, 1.18))
    return _svg(fig)


def distribution_chart(section: dict[str, Any]) -> str | None:
    """Histogram of the newest day's churn probabilities, with the tier bounds."""
    if not section.get("available"):
        return None
    bins, counts = section["bins"], section["counts"]
    fig, ax = _figure()
    ax.bar([(i + 0.5) / bins for i in range(bins)], counts, width=0.9 / bins, color="#3182ce")
    for bound in section.get("tier_bounds", [])[1:]:
        ax.axvline(bound, color="#4a5568", linestyle="--", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"churn probability on {section['score_date']} (dashed: tier bounds)", fontsize=8)
    ax.set_ylabel("customers", fontsize=8)
    return _svg(fig)


def drift_chart(section: dict[str, Any]) -> str | None:
    """Share of drifted monitored features and prediction drift per monitoring day, thresholds dashed, days over a
    threshold dotted red, retrain decisions as red bands."""
    if not section.get("available"):
        return None
    series = section["series"]
    dates = sorted({d for s in series.values() for d in s["dates"]})
    fig, ax = _figure()
    for i, (metric, s) in enumerate(sorted(series.items())):
        colour = OTHER_COLOURS[i % len(OTHER_COLOURS)]
        xs = [dates.index(d) for d in s["dates"]]
        ax.plot(xs, s["values"], marker="o", markersize=3, color=colour, label=metric)
        if any(t is not None for t in s["thresholds"]):
            ax.plot(xs, s["thresholds"], linestyle="--", linewidth=1, color=colour)
        flagged = [(x, v) for x, v, d in zip(xs, s["values"], s["drifted"], strict=True) if d and v is not None]
        if flagged:
            ax.scatter(*zip(*flagged, strict=True), color="#c53030", zorder=3, s=18)
    for day in section.get("retrain_days") or []:
        if day in dates:
            ax.axvline(dates.index(day), color="#c53030", alpha=0.25, linewidth=6)
    _date_ticks(ax, dates)
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(0, 1.2), ncols=3)
    ax.set_ylabel("value (dashed: threshold)", fontsize=8)
    if section.get("retrain_days"):
        ax.set_xlabel("red band: the monitor decided to retrain", fontsize=8)
    return _svg(fig)


def performance_chart(section: dict[str, Any]) -> str | None:
    """Realised PR AUC, ROC AUC and Brier score of each scoring day whose labels have matured."""
    if not section.get("available"):
        return None
    dates, metrics = section["dates"], section["metrics"]
    fig, ax = _figure()
    for i, name in enumerate(("pr_auc", "roc_auc", "brier")):
        values = metrics.get(name) or []
        if any(v is not None for v in values):
            ax.plot(range(len(dates)), values, marker="o", markersize=3, label=name, color=OTHER_COLOURS[i])
    ax.set_ylim(0, 1)
    _date_ticks(ax, dates)
    ax.set_xlabel("scoring day (labels matured one horizon later)", fontsize=8)
    ax.legend(fontsize=8, frameon=False, ncols=3, loc="upper left", bbox_to_anchor=(0, 1.18))
    return _svg(fig)


CHARTS = {
    "tiers": ("tiers", tier_chart),
    "scores": ("distribution", distribution_chart),
    "drift": ("drift", drift_chart),
    "performance": ("performance", performance_chart),
}


def render_chart(name: str, history: dict[str, Any]) -> str | None:
    """The named chart (tiers, scores, drift, performance) as SVG, or None for an unknown name or no data."""
    if name not in CHARTS:
        return None
    section, draw = CHARTS[name]
    return draw(history.get(section) or {})
