"""Warehouse access: one interface over DuckDB (embedded) and PostgreSQL (production).

SQL in the platform is written once with ``:name`` bound parameters and ``{table}`` placeholders
for contract tables; each backend translates placeholders and quotes identifiers for its dialect.
"""

from pipelines.warehouse.base import (
    SchemaMismatchError,
    Warehouse,
    WarehouseError,
    WarehouseUnavailableError,
)
from pipelines.warehouse.connection import connect, open_warehouse

__all__ = [
    "SchemaMismatchError",
    "Warehouse",
    "WarehouseError",
    "WarehouseUnavailableError",
    "connect",
    "open_warehouse",
]
