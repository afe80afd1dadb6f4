"""The one drift decision of a monitoring run, computed once and shown the same way everywhere.

Why: the log, the ``monitoring_drift`` table, the plugin page and the Evidently report used to carry three
different verdicts for one day (the report counted excluded features, the page flagged any drifted row).
:func:`make_verdict` builds a :class:`DriftVerdict` from the Evidently numbers; every view renders that
object: the log line and the report title are :attr:`DriftVerdict.headline`, the table rows are
:meth:`DriftVerdict.table_rows`, the result dict / XCom / plugin read :meth:`DriftVerdict.to_dict`
(also rebuilt from the table by :meth:`DriftVerdict.from_rows`).

``to_dict()`` fields (what the plugin page renders):
``score_date``, ``model_version``, ``reference`` (what was compared: the model's logged reference or
a period of scores), ``method``, ``retrain`` (bool), ``reasons`` (list of str, empty when no retrain),
``headline`` (one line), ``drift_share`` / ``drift_share_threshold`` (monitored features only),
``feature_drift_threshold``, ``monitored`` and ``excluded`` (lists of ``{name, value, threshold, drifted,
reason}``, reason = why excluded, or for a monitored ratio feature the two rates its value rests on), ``drifted_features`` (monitored ones that drifted),
``excluded_drifted`` (excluded ones that moved past the threshold: reported, never a retrain reason),
``prediction`` (``{value, threshold, drifted}``), ``realized`` (``{pr_auc, min_pr_auc, score_date, n}``
or None).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipelines.contract import DATASET_LEVEL_FEATURE, PROBABILITY_COLUMN

if TYPE_CHECKING:
    from pipelines.config import Config
    from pipelines.monitoring.drift import DriftSummary

MONITORED = "monitored"
EXCLUDED = "excluded"
DECISION = "decision"  # dataset-level rows that make the verdict
SHOWN = 8  # names listed in one reason before "and N more"
# The numbers the decision compares with a threshold (what a page or chart shows of a partition).
DECISION_METRICS = ("share_drifted_features", "prediction_drift", "realized_pr_auc")


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    role: str  # MONITORED or EXCLUDED
    value: float | None
    threshold: float | None
    drifted: bool  # crossed its threshold (for an excluded feature: reported only)
    reason: str = ""  # why excluded; for a monitored ratio feature, the rates its value rests on

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class DriftVerdict:
    score_date: str
    model_version: str
    reference: str
    method: str
    features: tuple[FeatureDrift, ...]
    drift_share_threshold: float
    feature_drift_threshold: float
    prediction_drift: float | None
    prediction_drift_threshold: float
    min_pr_auc: float
    realized_pr_auc: float | None = None
    realized_score_date: str | None = None
    realized_n: int | None = None
    reasons: tuple[str, ...] = field(default=())

    @property
    def retrain(self) -> bool:
        return bool(self.reasons)

    @property
    def monitored(self) -> list[FeatureDrift]:
        return [f for f in self.features if f.role == MONITORED]

    @property
    def excluded(self) -> list[FeatureDrift]:
        return [f for f in self.features if f.role == EXCLUDED]

    @property
    def drifted_features(self) -> list[str]:
        return sorted(f.name for f in self.monitored if f.drifted)

    @property
    def excluded_drifted(self) -> list[str]:
        return sorted(f.name for f in self.excluded if f.drifted)

    @property
    def drift_share(self) -> float | None:
        monitored = [f for f in self.monitored if f.value is not None]
        return len(self.drifted_features) / len(monitored) if monitored else None

    @property
    def prediction_drifted(self) -> bool:
        return self.prediction_drift is not None and self.prediction_drift >= self.prediction_drift_threshold

    @property
    def headline(self) -> str:
        """One line: the decision, then the numbers it rests on (log line, report title, table note)."""
        share = self.drift_share
        parts = [
            f"{len(self.drifted_features)}/{len(self.monitored)} monitored features drifted"
            + (
                f" (share {share:.2f} {'>=' if share >= self.drift_share_threshold else '<'} "
                f"{self.drift_share_threshold:.2f})"
                if share is not None
                else ""
            )
            + (f": {_names(self.drifted_features)}" if self.drifted_features else ""),
        ]
        if self.prediction_drift is not None:
            op = ">=" if self.prediction_drifted else "<"
            parts.append(f"prediction drift {self.prediction_drift:.3f} {op} {self.prediction_drift_threshold:.3f}")
        if self.realized_pr_auc is not None:
            op = "<" if self.realized_pr_auc < self.min_pr_auc else ">="
            parts.append(f"realized PR-AUC {self.realized_pr_auc:.3f} {op} {self.min_pr_auc:.3f}")
        if self.excluded:
            moved = self.excluded_drifted
            parts.append(
                f"{len(self.excluded)} excluded features reported only"
                + (f" ({len(moved)} moved: {_names(moved)})" if moved else "")
            )
        decision = "RETRAIN" if self.retrain else "no retrain"
        return f"{decision}: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        realized = None
        if self.realized_pr_auc is not None:
            realized = {
                "pr_auc": self.realized_pr_auc,
                "min_pr_auc": self.min_pr_auc,
                "score_date": self.realized_score_date,
                "n": self.realized_n,
            }
        return {
            "score_date": self.score_date,
            "model_version": self.model_version,
            "reference": self.reference,
            "method": self.method,
            "retrain": self.retrain,
            "reasons": list(self.reasons),
            "headline": self.headline,
            "drift_share": self.drift_share,
            "drift_share_threshold": self.drift_share_threshold,
            "feature_drift_threshold": self.feature_drift_threshold,
            "monitored": [f.to_dict() for f in self.monitored],
            "excluded": [f.to_dict() for f in self.excluded],
            "drifted_features": self.drifted_features,
            "excluded_drifted": self.excluded_drifted,
            "prediction": {
                "value": self.prediction_drift,
                "threshold": self.prediction_drift_threshold,
                "drifted": self.prediction_drifted,
            },
            "realized": realized,
        }

    # -- the monitoring_drift rows ---------------------------------------------------------------
    def table_rows(self) -> list[dict[str, Any]]:
        """``metric, feature, value, threshold, drifted, role, note`` rows that :meth:`from_rows` reads back.

        feature_drift (role monitored/excluded, note = why excluded), share_drifted_features (monitored
        only, note = method), prediction_drift, realized_pr_auc / realized_n (when matured scores exist),
        reference (note = what was compared), retrain (value 1/0, note = the headline) and one
        retrain_reason row per reason (feature reason_1, reason_2 ..., note = the reason).
        """
        rows = [
            _row("feature_drift", f.name, f.value, f.threshold, f.drifted, f.role, f.reason or None)
            for f in self.features
            if f.value is not None
        ]
        share = self.drift_share
        rows.append(
            _row(
                "share_drifted_features",
                DATASET_LEVEL_FEATURE,
                share,
                self.drift_share_threshold,
                share is not None and share >= self.drift_share_threshold,
                DECISION,
                f"method {self.method}, per-feature threshold {self.feature_drift_threshold:g}",
            )
        )
        if self.prediction_drift is not None:
            rows.append(
                _row(
                    "prediction_drift",
                    PROBABILITY_COLUMN,
                    self.prediction_drift,
                    self.prediction_drift_threshold,
                    self.prediction_drifted,
                    DECISION,
                    None,
                )
            )
        if self.realized_pr_auc is not None:
            rows.append(
                _row(
                    "realized_pr_auc",
                    DATASET_LEVEL_FEATURE,
                    self.realized_pr_auc,
                    self.min_pr_auc,
                    self.realized_pr_auc < self.min_pr_auc,
                    DECISION,
                    self.realized_score_date,
                )
            )
            if self.realized_n is not None:
                rows.append(_row("realized_n", DATASET_LEVEL_FEATURE, self.realized_n, None, False, DECISION, None))
        rows.append(_row("reference", DATASET_LEVEL_FEATURE, 0.0, None, False, DECISION, self.reference))
        rows.append(
            _row("retrain", DATASET_LEVEL_FEATURE, float(self.retrain), None, self.retrain, DECISION, self.headline)
        )
        rows += [
            _row("retrain_reason", f"reason_{i}", float(i), None, True, DECISION, reason)
            for i, reason in enumerate(self.reasons, start=1)
        ]
        return rows

    @classmethod
    def from_rows(cls, frame: pd.DataFrame, score_date: str | None = None, model_version: str | None = None):
        """The verdict as written by :meth:`table_rows` (one ``monitoring_drift`` partition).

        Raises ValueError when the partition has no ``retrain`` row (written before verdicts existed).
        """
        rows = {(str(r["metric"]), str(r["feature"])): r for r in frame.to_dict("records")}
        if ("retrain", DATASET_LEVEL_FEATURE) not in rows:
            raise ValueError("monitoring_drift partition has no 'retrain' row (written before drift verdicts)")
        share = rows.get(("share_drifted_features", DATASET_LEVEL_FEATURE), {})
        prediction = rows.get(("prediction_drift", PROBABILITY_COLUMN))
        realized = rows.get(("realized_pr_auc", DATASET_LEVEL_FEATURE))
        realized_n = rows.get(("realized_n", DATASET_LEVEL_FEATURE))
        note = str(share.get("note") or "")
        method = note.split(",", 1)[0].removeprefix("method ").strip() if note.startswith("method ") else ""
        feature_threshold = (
            finite_or_none(note.rsplit("per-feature threshold ", 1)[-1]) if "threshold " in note else None
        )
        features = tuple(
            FeatureDrift(
                str(r["feature"]),
                str(r.get("role") or MONITORED),
                finite_or_none(r["value"]),
                finite_or_none(r.get("threshold")),
                bool(r["drifted"]),
                str(r.get("note") or ""),
            )
            for (metric, _), r in sorted(rows.items(), key=lambda kv: (kv[1].get("role") != MONITORED, kv[0][1]))
            if metric == "feature_drift"
        )
        reasons = sorted(
            (
                (int(finite_or_none(r["value"]) or 0), str(r.get("note") or ""))
                for (m, _), r in rows.items()
                if m == "retrain_reason"
            ),
        )
        first = frame.iloc[0] if len(frame) else {}
        return cls(
            score_date=str(score_date or str(first.get("score_date", ""))[:10]),
            model_version=str(model_version or first.get("model_version", "")),
            reference=str(rows.get(("reference", DATASET_LEVEL_FEATURE), {}).get("note") or ""),
            method=method,
            features=features,
            drift_share_threshold=finite_or_none(share.get("threshold")) or 0.0,
            feature_drift_threshold=feature_threshold if feature_threshold is not None else math.nan,
            prediction_drift=finite_or_none(prediction["value"]) if prediction else None,
            prediction_drift_threshold=(finite_or_none(prediction.get("threshold")) or 0.0) if prediction else 0.0,
            min_pr_auc=(finite_or_none(realized.get("threshold")) or 0.0) if realized else 0.0,
            realized_pr_auc=finite_or_none(realized["value"]) if realized else None,
            realized_score_date=str(realized.get("note")) if realized and realized.get("note") else None,
            realized_n=int(finite_or_none(realized_n["value"]) or 0) if realized_n else None,
            reasons=tuple(text for _, text in reasons),
        )


def make_verdict(
    summary: DriftSummary,
    realized: Mapping[str, Any] | None,
    config: Config,
    *,
    monitored: Sequence[str],
    excluded: Mapping[str, str],
    score_date: str,
    model_version: str,
    reference: str,
    notes: Mapping[str, str] | None = None,
) -> DriftVerdict:
    """The decision: retrain when the monitored features' drifted share, the prediction drift or the
    realized PR-AUC cross their thresholds. Excluded features are listed with their reason and never
    count, whatever their value. ``notes``: what a monitored feature's value rests on (a ratio
    feature's two rates), kept as its ``reason``."""
    notes = notes or {}
    mon = config.monitoring
    features: list[FeatureDrift] = []
    for name in sorted(monitored):  # sorted, like every reading of the table
        d = summary.features.get(name)
        features.append(
            FeatureDrift(
                name,
                MONITORED,
                d.value if d else None,
                d.threshold if d else mon.feature_drift_threshold,
                bool(d and d.drifted),
                notes.get(name, ""),
            )
        )
    for name in sorted(excluded):
        d = summary.features.get(name)
        if d is not None:
            features.append(FeatureDrift(name, EXCLUDED, d.value, d.threshold, d.drifted, excluded[name]))
    pred = summary.prediction
    verdict = DriftVerdict(
        score_date=str(score_date),
        model_version=str(model_version),
        reference=reference,
        method=mon.feature_drift_method,
        features=tuple(features),
        drift_share_threshold=mon.drift_share_threshold,
        feature_drift_threshold=mon.feature_drift_threshold,
        prediction_drift=pred.value if pred else None,
        prediction_drift_threshold=mon.prediction_drift_threshold,
        min_pr_auc=mon.min_pr_auc,
        realized_pr_auc=finite_or_none((realized or {}).get("pr_auc")),
        realized_score_date=str(realized["score_date"]) if realized and realized.get("score_date") else None,
        realized_n=int(realized["n"]) if realized and realized.get("n") is not None else None,
    )
    return _with_reasons(verdict)


def _with_reasons(v: DriftVerdict) -> DriftVerdict:
    from dataclasses import replace

    reasons: list[str] = []
    share = v.drift_share
    if share is not None and share >= v.drift_share_threshold:
        moved = [
            f"{f.name} {f.value:.3f}" + (f" (threshold {f.threshold:g})" if f.threshold is not None else "")
            for f in v.monitored
            if f.drifted and f.value is not None
        ]
        reasons.append(
            f"feature drift: {len(moved)} of {len(v.monitored)} monitored features drifted "
            f"(share {share:.2f} >= drift_share_threshold {v.drift_share_threshold:.2f}): {_names(moved)}"
        )
    if v.prediction_drifted:
        reasons.append(
            f"prediction drift: churn_probability distribution moved by {v.prediction_drift:.3f} "
            f"(wasserstein_guarded) >= prediction_drift_threshold {v.prediction_drift_threshold:.3f}"
        )
    if v.realized_pr_auc is not None and v.realized_pr_auc < v.min_pr_auc:
        reasons.append(
            f"performance: realized PR-AUC {v.realized_pr_auc:.3f} of the scores from "
            f"{v.realized_score_date} (n={v.realized_n or 0}) < min_pr_auc {v.min_pr_auc:.3f}"
        )
    return replace(v, reasons=tuple(reasons))


def report_header_html(v: DriftVerdict) -> str:
    """A header for the Evidently HTML: the same verdict as the log and the table (the report's own
    "Dataset Drift" box counts every feature, excluded ones too, so it is labelled as such)."""
    from html import escape

    def items(features: Sequence[FeatureDrift], with_reason: bool) -> str:
        if not features:
            return "<li>none</li>"
        return "".join(
            f"<li>{escape(f.name)}: {'' if f.value is None else f'{f.value:.3f}'}"
            f"{' (threshold ' + format(f.threshold, 'g') + ')' if f.threshold is not None else ''}"
            f"{' <b>drifted</b>' if f.drifted else ''}"
            f"{' - ' + escape(f.reason) if with_reason and f.reason else ''}</li>"
            for f in features
        )

    color = "#b00020" if v.retrain else "#1b5e20"
    reasons = "".join(f"<li>{escape(r)}</li>" for r in v.reasons) or "<li>no threshold crossed</li>"
    drifted_monitored = [f for f in v.monitored if f.drifted]
    return (
        "<header style='font-family:sans-serif;padding:12px 20px;border-bottom:1px solid #ccc'>"
        f"<h1 style='font-size:20px;margin:4px 0'>Churn drift {escape(v.score_date)}, model v{escape(v.model_version)}"
        f": <span style='color:{color}'>{'RETRAIN' if v.retrain else 'no retrain'}</span></h1>"
        f"<p style='margin:4px 0'>{escape(v.headline)}</p>"
        f"<p style='margin:4px 0'>Compared with: {escape(v.reference)}. Method {escape(v.method)}.</p>"
        f"<details open><summary>Reasons</summary><ul>{reasons}</ul></details>"
        f"<details><summary>Monitored features that drifted ({len(drifted_monitored)}/{len(v.monitored)})</summary>"
        f"<ul>{items(drifted_monitored, False)}</ul></details>"
        f"<details><summary>Excluded features ({len(v.excluded)}; reported only, never a retrain reason)</summary>"
        f"<ul>{items(v.excluded, True)}</ul></details>"
        "<p style='margin:4px 0;color:#555'>Below: Evidently's report over every feature; its dataset-drift "
        "share counts the excluded features too and is not the decision.</p>"
        "</header>"
    )


def _names(names: Sequence[str]) -> str:
    return ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def _row(metric, feature, value, threshold, drifted, role, note) -> dict[str, Any]:
    return {
        "metric": metric,
        "feature": feature,
        "value": None if value is None else float(value),
        "threshold": None if threshold is None else float(threshold),
        "drifted": bool(drifted),
        "role": role,
        "note": note,
    }


def finite_or_none(value: Any) -> float | None:
    """A finite float, or None for anything else (NaN, inf, text, None): what a drift value may be."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None
