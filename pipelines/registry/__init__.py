"""MLflow model registry: versions, aliases ``@challenger`` / ``@champion`` and the promotion gate.

Task-level functions (the DAGs call exactly these; each takes the Config first and returns small values):
``register_candidate`` and ``run_promotion_gate``. Readers of the production model use ``resolve_champion``
(alias -> fixed version) and ``load_model_version``. Training runs are logged by ``pipelines.training``
and evaluated by ``pipelines.evaluation``; the registry only registers, aliases and gates them.
"""

from pipelines.registry.errors import (
    NoChampionError,
    RegistryError,
    RegistryUnavailableError,
    UnknownVersionError,
)
from pipelines.registry.gate import compare_versions, gate_decision, run_promotion_gate
from pipelines.registry.versions import (
    CHALLENGER,
    CHAMPION,
    ModelRef,
    list_versions,
    load_model_version,
    promote,
    register_candidate,
    resolve_champion,
    rollback,
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
    "gate_decision",
    "list_versions",
    "load_model_version",
    "promote",
    "register_candidate",
    "resolve_champion",
    "rollback",
    "run_promotion_gate",
]
