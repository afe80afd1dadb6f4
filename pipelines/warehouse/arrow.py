"""Conform in-memory data to a contract table's columns and Arrow types before loading."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import Table

ARROW_TYPES = {
    "bigint": pa.int64(),
    "integer": pa.int32(),
    "double": pa.float64(),
    "text": pa.string(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "boolean": pa.bool_(),
}


class ContractError(ValueError):
    """Data does not fit the contract; the message names the table and column."""


def arrow_schema(table: Table) -> pa.Schema:
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.type], nullable=c.nullable) for c in table.columns])


def conform_to_contract(table: Table, data) -> pa.Table:
    """Select the contract's columns in order and cast each to its contract type.

    Missing nullable columns become nulls; a missing required column, a naive timestamp or a
    null in a required column is an error naming ``table.column``.
    """
    if not isinstance(data, pa.Table):
        data = pa.Table.from_pandas(data, preserve_index=False)
    arrays = []
    for col in table.columns:
        target = ARROW_TYPES[col.type]
        if col.name not in data.column_names:
            if not col.nullable:
                raise ContractError(f"{table.name}.{col.name}: required column is missing")
            arrays.append(pa.nulls(data.num_rows, target))
            continue
        array = data.column(col.name)
        if col.type == "timestamptz":
            if not pa.types.is_timestamp(array.type):
                raise ContractError(f"{table.name}.{col.name}: expected a timestamp, got {array.type}")
            if array.type.tz is None:
                raise ContractError(f"{table.name}.{col.name}: timestamps must be timezone-aware (UTC)")
        try:
            array = pc.cast(array, target) if array.type != target else array
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ContractError(f"{table.name}.{col.name}: cannot convert {array.type} to {col.type}: {exc}") from exc
        if not col.nullable and array.null_count:
            raise ContractError(f"{table.name}.{col.name}: {array.null_count} null value(s) in a required column")
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=arrow_schema(table))
