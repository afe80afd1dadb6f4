"""What a task may hand to the next one through XCom: small JSON-able values, never frames or arrays.

Why its own module: every DAG task returns job results through it, and it has no dependency on any
layer, so the DAGs and the library agree on one shape.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

_SKIP = object()


def _scalar(value: Any) -> Any:
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        try:
            return _scalar(value.item())
        except (TypeError, ValueError):
            return _SKIP
    return _SKIP


def small_dict(values: Mapping[str, Any] | None, limit: int = 40, max_items: int = 20) -> dict[str, Any]:
    """What is safe and useful to pass via XCom: scalars, short lists of scalars and one-level dicts of
    scalars (e.g. tier counts, gate reasons), at most ``limit`` keys. Frames and arrays are dropped."""
    out: dict[str, Any] = {}
    for key, value in (values or {}).items():
        if len(out) >= limit:
            break
        if isinstance(value, Mapping):
            inner = {str(k): _scalar(v) for k, v in list(value.items())[:max_items]}
            kept: Any = {k: v for k, v in inner.items() if v is not _SKIP}
        elif isinstance(value, list | tuple):
            kept = [v for v in (_scalar(x) for x in value[:max_items]) if v is not _SKIP]
        else:
            kept = _scalar(value)
        if kept is not _SKIP:
            out[str(key)] = kept
    return out


def latest_event_extra(extras: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """The ``extra`` of the latest triggering asset event that has one (events arrive oldest first)."""
    latest: dict[str, Any] = {}
    for extra in extras:
        latest = dict(extra or {}) or latest
    return latest
