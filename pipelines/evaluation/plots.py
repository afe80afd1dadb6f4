"""Evaluation plots as PNG files for the run's artifacts.

Why ``matplotlib.figure.Figure`` instead of pyplot: no global backend or figure state, so plotting is
safe in Airflow workers and threads and never needs a display (it renders with Agg).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from pipelines.models.metrics import _as_arrays, expected_calibration_error, pr_auc, roc_auc

logger = logging.getLogger(__name__)

PLOT_FILES = ("roc.png", "pr.png", "calibration.png", "gains.png", "score_hist.png")
_DPI = 110
_BLUE, _ORANGE, _GREY = "#1f77b4", "#ff7f0e", "#7f7f7f"


def _figure(title: str, xlabel: str, ylabel: str, size=(6.0, 4.8)):
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=12)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=_DPI)
    return path


def _roc(y, p, path: Path, label: str) -> Path:
    fig, ax = _figure("ROC curve", "False positive rate", "True positive rate")
    if 0 < y.sum() < y.size:
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, color=_BLUE, lw=2, label=f"{label} (AUC = {roc_auc(y, p):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color=_GREY, label="random (AUC = 0.500)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right")
    return _save(fig, path)


def _pr(y, p, path: Path, label: str) -> Path:
    fig, ax = _figure("Precision-recall curve", "Recall", "Precision")
    rate = float(y.mean()) if y.size else 0.0
    if y.sum() > 0:
        precision, recall, _ = precision_recall_curve(y, p)
        ax.step(recall, precision, where="post", color=_BLUE, lw=2, label=f"{label} (AP = {pr_auc(y, p):.3f})")
    ax.axhline(rate, ls="--", color=_GREY, label=f"churn rate ({rate:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="upper right")
    return _save(fig, path)


def _calibration(y, p, path: Path, label: str, bins: int = 10) -> Path:
    fig = Figure(figsize=(6.0, 6.0), layout="constrained")
    ax, ax_hist = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    edges = np.linspace(0, 1, bins + 1)
    idx = np.minimum((np.clip(p, 0, 1) * bins).astype(int), bins - 1)
    counts = np.bincount(idx, minlength=bins)
    used = counts > 0
    mean_p = np.bincount(idx, weights=p, minlength=bins)[used] / counts[used]
    rate = np.bincount(idx, weights=y, minlength=bins)[used] / counts[used]
    ax.plot([0, 1], [0, 1], ls="--", color=_GREY, label="perfectly calibrated")
    ax.plot(
        mean_p,
        rate,
        marker="o",
        color=_BLUE,
        lw=2,
        label=f"{label} (ECE = {expected_calibration_error(y, p, bins):.3f})",
    )
    ax.set_title("Calibration (reliability diagram)", fontsize=12)
    ax.set_ylabel("Observed churn rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    ax_hist.bar(edges[:-1], counts, width=1 / bins, align="edge", color=_BLUE, alpha=0.6, edgecolor="white")
    ax_hist.set_xlabel("Predicted churn probability")
    ax_hist.set_ylabel("Customers")
    ax_hist.grid(alpha=0.3)
    return _save(fig, path)


def _gains(y, p, path: Path, label: str) -> Path:
    fig, ax = _figure(
        "Cumulative gains and lift", "Share of customers contacted (highest risk first)", "Share of churners captured"
    )
    order = np.argsort(-p, kind="mergesort")
    n, positives = y.size, max(int(y.sum()), 1)
    share = np.arange(1, n + 1) / n
    captured = np.cumsum(y[order]) / positives
    ax.plot(np.r_[0, share], np.r_[0, captured], color=_BLUE, lw=2, label=f"{label} gains")
    ax.plot([0, 1], [0, 1], ls="--", color=_GREY, label="random")
    for top in (0.1, 0.2):
        k = max(1, int(round(top * n)))
        ax.plot(share[k - 1], captured[k - 1], "o", color=_ORANGE)
        ax.annotate(
            f"top {top:.0%}: {captured[k - 1]:.0%}",
            (share[k - 1], captured[k - 1]),
            textcoords="offset points",
            xytext=(8, -12),
            fontsize=9,
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    lift_ax = ax.twinx()
    lift = captured / share
    lift_ax.plot(share, lift, color=_ORANGE, lw=1.5, alpha=0.8, label="lift")
    lift_ax.set_ylabel("Lift", color=_ORANGE)
    lift_ax.set_ylim(0, max(float(np.nanmax(lift[max(0, n // 100) :])), 1.0) * 1.1 if n else 2)
    handles = ax.get_legend_handles_labels()
    more = lift_ax.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], loc="lower right")
    return _save(fig, path)


def _score_hist(y, p, path: Path) -> Path:
    fig, ax = _figure("Score distribution by outcome", "Predicted churn probability", "Share of class")
    bins = np.linspace(0, 1, 31)
    for cls, name, color in ((0, "retained", _BLUE), (1, "churned", _ORANGE)):
        s = p[y == cls]
        if s.size:
            ax.hist(
                s,
                bins=bins,
                weights=np.full(s.size, 1 / s.size),
                alpha=0.55,
                color=color,
                label=f"{name} (n = {s.size}, mean = {s.mean():.3f})",
            )
    ax.set_xlim(0, 1)
    ax.legend(loc="upper center")
    return _save(fig, path)


def save_plots(y_true, p, out_dir, label: str = "model") -> list[Path]:
    """Write roc.png, pr.png, calibration.png, gains.png and score_hist.png into ``out_dir``."""
    y, s = _as_arrays(y_true, p)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        _roc(y, s, out / "roc.png", label),
        _pr(y, s, out / "pr.png", label),
        _calibration(y, s, out / "calibration.png", label),
        _gains(y, s, out / "gains.png", label),
        _score_hist(y, s, out / "score_hist.png"),
    ]
    logger.info("wrote %d evaluation plots to %s", len(paths), out)
    return paths
