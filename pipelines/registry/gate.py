"""The promotion gate: a challenger replaces the champion only if it wins on the same customers.

Policy lives here, MLflow calls in ``versions``: both versions are scored on the challenger's test split,
the PR-AUC gain needs a paired-bootstrap 95% CI above zero, and ROC-AUC / Brier may not regress beyond
``registry.max_metric_regression``. The decision and its reasons are recorded as version tags.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from pipelines import tracking as t
from pipelines.config import Config
from pipelines.contract import LABEL_COLUMN
from pipelines.datasets import load_training_sets
from pipelines.evaluation import bootstrap_metric_difference
from pipelines.models.metrics import KEY_METRICS, choose_threshold, compute_metrics
from pipelines.registry.errors import RegistryError
from pipelines.registry.versions import (
    CHAMPION,
    VTAG_DECISION,
    VTAG_REASONS,
    alias_version,
    get_version,
    load_model_version,
    now_iso,
    promote,
    registry_client,
    set_version_tags,
    version_row,
)

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------


def paired_evaluation(config: Config, mlflow_client, new_version: str, old_version: str) -> dict[str, Any]:
    """Both versions scored on the newer version's test split; paired bootstrap of the PR-AUC difference."""
    name = config.registry.model_name
    new_mv = get_version(mlflow_client, name, new_version)
    run = t.get_run(mlflow_client, new_mv.run_id)
    manifest_path = run.data.tags.get(t.TAG_MANIFEST)
    if not manifest_path:
        raise RegistryError(f"{name} version {new_version}: run {new_mv.run_id} has no {t.TAG_MANIFEST!r} tag")
    sets = load_training_sets(str(config.resolve_path(manifest_path, t.TAG_MANIFEST)))
    y_test = sets.test[LABEL_COLUMN].to_numpy()
    y_val = sets.validation[LABEL_COLUMN].to_numpy()
    scores: dict[str, np.ndarray] = {}
    metrics: dict[str, dict[str, float]] = {}
    for version in (new_version, old_version):
        predictor = load_model_version(config, version)
        missing = [c for c in predictor.feature_names if c not in sets.test.columns]
        if missing:
            raise RegistryError(
                f"{name} version {version} needs features missing from version {new_version}'s "
                f"test data: {', '.join(missing[:10])}"
            )
        threshold = choose_threshold(y_val, predictor.predict_proba(sets.validation))
        scores[version] = predictor.predict_proba(sets.test)
        metrics[version] = compute_metrics(y_test, scores[version], threshold=threshold)
    diff = bootstrap_metric_difference(
        y_test,
        scores[new_version],
        scores[old_version],
        "pr_auc",
        config.registry.bootstrap_rounds,
        config.training.seed,
    )
    return {"data": manifest_path, "rows": len(y_test), "metrics": metrics, "pr_auc_difference": diff}


def gate_decision(
    config: Config, challenger: dict[str, float], champion: dict[str, float], pr_auc_ci: dict[str, float]
) -> tuple[bool, list[str]]:
    """The promotion rule on paired metrics; returns (passed, reasons), one reason per criterion."""
    reg = config.registry
    reasons = []
    passed = True
    gain = challenger["pr_auc"] - champion["pr_auc"]
    ok = math.isfinite(gain) and gain >= reg.min_pr_auc_gain
    passed &= ok
    reasons.append(
        f"PR-AUC {challenger['pr_auc']:.4f} vs {champion['pr_auc']:.4f} (gain {gain:+.4f}, "
        f"needs >= {reg.min_pr_auc_gain:.4f}): {'ok' if ok else 'FAIL'}"
    )
    low, high = pr_auc_ci.get("ci_low", math.nan), pr_auc_ci.get("ci_high", math.nan)
    ok = math.isfinite(low) and low > 0
    passed &= ok
    reasons.append(
        f"paired bootstrap 95% CI of PR-AUC gain [{low:+.4f}, {high:+.4f}] "
        f"({reg.bootstrap_rounds} rounds, needs > 0): {'ok' if ok else 'FAIL'}"
    )
    drop = champion["roc_auc"] - challenger["roc_auc"]
    ok = math.isfinite(drop) and drop <= reg.max_metric_regression
    passed &= ok
    reasons.append(
        f"ROC-AUC {challenger['roc_auc']:.4f} vs {champion['roc_auc']:.4f} (drop {drop:+.4f}, "
        f"max {reg.max_metric_regression:.4f}): {'ok' if ok else 'FAIL'}"
    )
    rise = challenger["brier"] - champion["brier"]
    ok = math.isfinite(rise) and rise <= reg.max_metric_regression
    passed &= ok
    reasons.append(
        f"Brier {challenger['brier']:.4f} vs {champion['brier']:.4f} (rise {rise:+.4f}, "
        f"max {reg.max_metric_regression:.4f}): {'ok' if ok else 'FAIL'}"
    )
    return bool(passed), reasons


def run_promotion_gate(config: Config, version: str | int) -> dict:
    """Compare challenger ``version`` with the champion on the challenger's test split; promote if it passes
    and ``registry.auto_promote`` is true. The decision and reasons are recorded as version tags."""
    mlflow_client = registry_client(config)
    name = config.registry.model_name
    version = str(get_version(mlflow_client, name, version).version)
    champion = alias_version(mlflow_client, name, CHAMPION)
    result: dict[str, Any] = {
        "promoted": False,
        "passed": False,
        "reasons": [],
        "challenger": version,
        "champion": champion,
    }
    tags: dict[str, Any] = {"gate.evaluated_at": now_iso(), "gate.champion_version": champion or "none"}
    if champion is None:
        result["passed"] = True
        result["reasons"] = ["no champion yet: the first challenger passes"]
    elif champion == version:
        result["passed"] = True
        result["reasons"] = [f"version {version} is already @{CHAMPION}"]
    else:
        try:
            paired = paired_evaluation(config, mlflow_client, version, champion)
        except RegistryError as exc:
            result["reasons"] = [f"cannot compare with champion {champion}: {exc}"]
        else:
            new, old = paired["metrics"][version], paired["metrics"][champion]
            diff = paired["pr_auc_difference"]
            result["passed"], result["reasons"] = gate_decision(config, new, old, diff)
            result["metrics"] = {
                "challenger": {k: new[k] for k in KEY_METRICS},
                "champion": {k: old[k] for k in KEY_METRICS},
                "pr_auc_difference": diff,
            }
            tags.update(
                {
                    "gate.pr_auc_gain": new["pr_auc"] - old["pr_auc"],
                    "gate.pr_auc_ci_low": diff.get("ci_low"),
                    "gate.pr_auc_ci_high": diff.get("ci_high"),
                    "gate.champion_pr_auc": old["pr_auc"],
                    "gate.challenger_pr_auc": new["pr_auc"],
                }
            )

    if result["passed"] and champion != version:
        if config.registry.auto_promote:
            promote(config, version, reason="promotion gate passed: " + "; ".join(result["reasons"]))
            result["promoted"] = True
            decision = "promoted"
        else:
            decision = "would promote (registry.auto_promote is false; promote with `churn promote " + version + "`)"
    elif result["passed"]:
        decision = "already champion"
    else:
        failed = [reason for reason in result["reasons"] if not reason.endswith(": ok")]
        decision = "refused: " + "; ".join(failed or result["reasons"])
    result["decision"] = decision
    tags.update(
        {
            VTAG_DECISION: decision,
            VTAG_REASONS: "\n".join(result["reasons"]),
            "gate.passed": str(result["passed"]).lower(),
        }
    )
    set_version_tags(mlflow_client, name, version, tags)
    logger.info("promotion gate for %s version %s vs champion %s: %s", name, version, champion, decision)
    return result


def compare_versions(config: Config, a: str | int, b: str | int, *, paired: bool = True) -> dict:
    """Both versions' recorded metrics side by side, plus both scored on the newer version's test split."""
    mlflow_client = registry_client(config)
    name = config.registry.model_name
    mv_a, mv_b = get_version(mlflow_client, name, a), get_version(mlflow_client, name, b)
    aliases: dict[str, list[str]] = {}
    for alias, version in (mlflow_client.get_registered_model(name).aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    out: dict[str, Any] = {
        "a": version_row(mlflow_client, mv_a, aliases),
        "b": version_row(mlflow_client, mv_b, aliases),
    }
    if paired and str(mv_a.version) != str(mv_b.version):
        newer, older = (mv_a, mv_b) if int(mv_a.version) > int(mv_b.version) else (mv_b, mv_a)
        try:
            result = paired_evaluation(config, mlflow_client, str(newer.version), str(older.version))
        except Exception as exc:  # e.g. datasets no longer on disk: recorded metrics still compare
            out["paired"] = {"error": str(exc)}
        else:
            new_m, old_m = result["metrics"][str(newer.version)], result["metrics"][str(older.version)]
            out["paired"] = {
                "data_of_version": str(newer.version),
                "data": result["data"],
                "rows": result["rows"],
                "newer": str(newer.version),
                "older": str(older.version),
                str(newer.version): {k: new_m[k] for k in KEY_METRICS},
                str(older.version): {k: old_m[k] for k in KEY_METRICS},
                "pr_auc_difference": result["pr_auc_difference"],
            }
    return out
