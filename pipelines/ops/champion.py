"""The champion card of the operator page: which model serves, since when, why, and how good it was on test.

Reads the ``@champion`` version's registry tags (kind, as-of date, promotion time and reason, gate decision)
and its MLflow run's metrics; never raises (a missing registry becomes a message).
"""

from __future__ import annotations

import logging
from typing import Any

from pipelines.config import Config

logger = logging.getLogger(__name__)

# (metric suffix, label); the card shows the champion's test value next to both candidates' in the same run
KEY_METRICS = (
    ("pr_auc", "PR AUC"),
    ("roc_auc", "ROC AUC"),
    ("brier", "Brier score"),
    ("ece", "calibration error (ECE)"),
    ("lift_at_10", "lift in the top 10%"),
    ("capture_at_10", "churners caught in the top 10%"),
    ("churn_rate", "churn rate"),
    ("n", "test customers"),
)
CANDIDATES = ("hybrid", "transformer", "baseline")


def mlflow_ui_url(config: Config) -> str:
    """Where an operator opens MLflow: the tracking server itself, or `make mlflow-ui` for the local store."""
    uri = config.tracking_uri
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else "http://localhost:5000"


def champion_card(config: Config) -> dict[str, Any]:
    try:
        from pipelines.registry import resolve_champion

        ref = resolve_champion(config)
    except Exception as exc:
        return {
            "available": False,
            "message": f"No champion model yet ({exc}). Run the churn_training DAG with registry.auto_promote, "
            "or promote a version with `churn promote VERSION`.",
        }
    card: dict[str, Any] = {"available": True, "name": ref.name, "version": str(ref.version), "run_id": ref.run_id}
    try:
        from pipelines import tracking

        client = tracking.client_for(config)
        tags = dict(client.get_model_version(ref.name, str(ref.version)).tags or {})
        card.update(
            kind=tags.get("candidate_kind"),
            as_of=tags.get("as_of"),
            promoted_at=tags.get("promoted_at"),
            promotion_reason=tags.get("promotion_reason"),
            gate_decision=tags.get("gate.decision"),
            gate_reasons=tags.get("gate.reasons"),
            previous_champion=tags.get("previous_champion"),
        )
        run = client.get_run(ref.run_id)
        metrics = dict(run.data.metrics)
        card["run_name"] = run.info.run_name
        card["run_url"] = f"{mlflow_ui_url(config)}/#/experiments/{run.info.experiment_id}/runs/{ref.run_id}"
        card["metrics"] = [
            {
                "key": key,
                "label": label,
                "champion": metrics.get(f"test_{key}"),
                **{kind: metrics.get(f"{kind}_test_{key}") for kind in CANDIDATES},
            }
            for key, label in KEY_METRICS
            if any(k in metrics for k in (f"test_{key}", *(f"{c}_test_{key}" for c in CANDIDATES)))
        ]
        card["kind"] = card.get("kind") or run.data.tags.get("candidate_kind")
    except Exception as exc:
        logger.warning("ops page: champion details unavailable: %s", exc)
        card["details_message"] = f"Registry details unavailable ({type(exc).__name__}: {exc})."
    return card
