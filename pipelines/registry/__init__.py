"""MLflow tracking and model registry: training runs, versions, aliases and the promotion gate.

Task-level functions (the DAGs call exactly these; each takes the Config first and returns small values):
``train_and_log``, ``evaluate_run``, ``register_candidate``, ``run_promotion_gate``. Readers of the
production model use ``resolve_champion`` (alias -> fixed version) and ``load_model_version``.
"""

from pipelines.registry.errors import (
    NoChampionError,
    RegistryError,
    RegistryUnavailableError,
    UnknownVersionError,
)
from pipelines.registry.runs import evaluate_run, train_and_log
from pipelines.registry.versions import (
    CHALLENGER,
    CHAMPION,
    ModelRef,
    compare_versions,
    gate_decision,
    list_versions,
    load_model_version,
    promote,
    register_candidate,
    resolve_champion,
    rollback,
    run_promotion_gate,
)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "ModelRef",
    "NoChampionError",
    "RegistryError",
    "RegistryUnavailableError",
    "UnknownVersionError",
    "compare_versions",
    "evaluate_run",
    "gate_decision",
    "list_versions",
    "load_model_version",
    "promote",
    "register_candidate",
    "resolve_champion",
    "rollback",
    "run_promotion_gate",
    "train_and_log",
]
