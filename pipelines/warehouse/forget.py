"""Delete one customer's data from every warehouse table (the right to erasure), in one transaction.

Why driven by the contract: every table with a ``customer_id`` column is covered, including output
tables added later (scores, reasons, segments), so a new table cannot be forgotten by this command.
``order_items`` has no ``customer_id``; its rows go through the customer's orders. Monitoring tables
hold only aggregates (no customer rows). MLflow artifacts hold pseudonymised ids only
(:mod:`pipelines.features.privacy`), training-set files under ``dataset.output_dir`` are rebuilt by
the next training run.
"""

from __future__ import annotations

import logging

from pipelines.contract import ALL_TABLES, ID_COLUMN, ORDER_ITEMS, Table
from pipelines.warehouse.base import Warehouse

logger = logging.getLogger(__name__)


def customer_tables() -> list[Table]:
    """Contract tables with a customer_id column, children before ``customers`` (foreign keys)."""
    tables = [t for t in ALL_TABLES if ID_COLUMN in t.column_names]
    return sorted(tables, key=lambda t: t.name == "customers")


def forget_customer(warehouse: Warehouse, customer_id: int) -> dict[str, int]:
    """Delete every row of ``customer_id``; returns rows deleted per table (atomic: all or nothing)."""
    customer_id = int(customer_id)
    params = {"id": customer_id}
    deleted: dict[str, int] = {}
    with warehouse.transaction():
        if warehouse.table_exists(ORDER_ITEMS.name):
            items = warehouse.render(
                "FROM {order_items} WHERE order_id IN (SELECT order_id FROM {orders} WHERE customer_id = :id)"
            )
            deleted[ORDER_ITEMS.name] = int(warehouse.scalar(f"SELECT COUNT(*) {items}", params) or 0)
            warehouse.execute(f"DELETE {items}", params)
        for table in customer_tables():
            if not warehouse.table_exists(table.name):
                continue
            name = warehouse.qualified(table.name)
            deleted[table.name] = int(
                warehouse.scalar(f"SELECT COUNT(*) FROM {name} WHERE customer_id = :id", params) or 0
            )
            warehouse.execute(f"DELETE FROM {name} WHERE customer_id = :id", params)
    logger.info(
        "forgot customer %d: %s",
        customer_id,
        ", ".join(f"{t} {n}" for t, n in deleted.items() if n) or "no rows found",
    )
    return deleted


def remaining_rows(warehouse: Warehouse, customer_id: int) -> dict[str, int]:
    """Rows still holding ``customer_id`` per table (all zero after :func:`forget_customer`)."""
    out = {}
    params = {"id": int(customer_id)}
    for table in customer_tables():
        if warehouse.table_exists(table.name):
            name = warehouse.qualified(table.name)
            out[table.name] = int(warehouse.scalar(f"SELECT COUNT(*) FROM {name} WHERE customer_id = :id", params) or 0)
    return out
