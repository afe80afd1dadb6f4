"""Importers for real exports: purchase logs, clickstream events and reviews (CSV or Parquet).

Why all-or-nothing: a half-imported purchase log silently skews every feature, so every row is
parsed first, all problems are reported together (``DataImportError``, exit code 4) and nothing is
written unless the whole file is clean; the write itself is one transaction.

Conventions (also in the README):

* ``column_map`` maps contract names to file columns (``{"customer_id": "user"}``); without it, common
  spellings are recognised (``user_id``, ``InvoiceDate``, ``StockCode``...), ignoring case and ``_``.
* Naive timestamps are taken as UTC; timestamps with an offset or zone are converted to UTC.
* Number conventions (decimal mark, thousands separator), the day/month order of dates and the text
  encoding are decided once per column / file from all of its values (``pipelines.data.formats``);
  what the values cannot decide is refused with the option that settles it, never guessed.
* Columns the import does not use are listed in the log.
* Numeric ids are kept; other ids (``"C-1042"``, ``"85123A"``) become stable 62-bit integers
  (the same string always gives the same id, across files and runs).
* Customers missing from the warehouse are created from the first time they are seen, with country and
  acquisition channel ``unknown`` (or the file's ``country`` column); products likewise.

Why one file over 400 lines: the three importers share column resolution, parsing and the all-or-nothing
write; the format detection itself lives in ``formats.py``.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.contract import EVENT_TYPES, ORDER_STATUSES, RAW_TABLES, ExitCode
from pipelines.data.formats import FormatError, ParseOptions, detect_encoding, parse_datetimes, parse_numbers
from pipelines.warehouse.base import Warehouse

logger = logging.getLogger(__name__)

READ_CHUNK_ROWS = 200_000
MAX_LISTED_PROBLEMS = 20
SESSION_GAP_MINUTES = 30

# field -> (required, accepted spellings besides the field name itself; a trailing * matches any ending)
TRANSACTION_FIELDS: dict[str, tuple[bool, tuple[str, ...]]] = {
    "customer_id": (True, ("customer", "customerid", "user_id", "user", "userid", "client_id", "buyer_id")),
    "timestamp": (
        True,
        (
            "ordered_at",
            "order_date",
            "invoice_date",
            "invoicedate",
            "date",
            "datetime",
            "time",
            "created_at",
            "purchase_date",
            "transaction_date",
            "event_time",
        ),
    ),
    "amount": (False, ("total_amount", "line_total", "revenue", "total", "sales", "value", "price_total")),
    "unit_price": (False, ("unitprice", "price", "item_price")),
    "quantity": (False, ("qty", "units", "quantity_ordered", "num_items", "n_items", "number_of_*")),
    "order_id": (False, ("order", "invoice", "invoice_no", "invoiceno", "transaction_id", "order_number")),
    "product_id": (False, ("product", "sku", "stock_code", "stockcode", "item_id", "itemid", "article")),
    "product_name": (False, ("title", "description", "product_title", "item_name", "product_description")),
    "category": (False, ("product_category", "category_name")),
    "status": (False, ("order_status",)),
    "country": (False, ("customer_country",)),
}
EVENT_FIELDS: dict[str, tuple[bool, tuple[str, ...]]] = {
    "customer_id": (True, ("customer", "user_id", "user", "userid", "visitorid", "visitor_id", "client_id")),
    "timestamp": (True, ("event_at", "event_time", "time", "datetime", "date", "created_at", "ts")),
    "event_type": (True, ("event", "event_name", "action", "type", "eventtype")),
    "session_id": (False, ("session", "sessionid", "visit_id")),
    "product_id": (False, ("product", "item_id", "itemid", "sku")),
    "event_id": (False, ()),
}
REVIEW_FIELDS: dict[str, tuple[bool, tuple[str, ...]]] = {
    "customer_id": (True, ("customer", "user_id", "user", "userid", "reviewer_id", "author_id")),
    "timestamp": (True, ("reviewed_at", "review_date", "date", "time", "created_at", "datetime")),
    "rating": (True, ("stars", "score", "star_rating", "review_score")),
    "review_text": (False, ("text", "review", "body", "comment", "review_body", "content")),
    "product_id": (False, ("product", "item_id", "itemid", "sku", "asin")),
    "review_id": (False, ()),
}

# Event names seen in common analytics exports -> contract event types.
EVENT_ALIASES: dict[str, str] = {
    **{name: name for name in EVENT_TYPES},
    "page_view": "view",
    "pageview": "view",
    "view_item": "view",
    "product_view": "view",
    "item_view": "view",
    "viewed": "view",
    "screen_view": "view",
    "detail": "view",
    "view_product": "view",
    "product_viewed": "view",
    "searched": "search",
    "site_search": "search",
    "view_search_results": "search",
    "search_query": "search",
    "addtocart": "add_to_cart",
    "add_to_basket": "add_to_cart",
    "cart_add": "add_to_cart",
    "cart": "add_to_cart",
    "added_to_cart": "add_to_cart",
    "add_to_bag": "add_to_cart",
    "product_added": "add_to_cart",
    "purchase": "checkout",
    "transaction": "checkout",
    "order": "checkout",
    "order_completed": "checkout",
    "checkout_completed": "checkout",
    "begin_checkout": "checkout",
    "purchased": "checkout",
    "buy": "checkout",
    "support": "support_contact",
    "contact_support": "support_contact",
    "support_ticket": "support_contact",
    "ticket": "support_contact",
    "chat": "support_contact",
    "complaint": "support_contact",
    "contact": "support_contact",
    "customer_service": "support_contact",
}
STATUS_ALIASES: dict[str, str] = {
    **{name: name for name in ORDER_STATUSES},
    "complete": "completed",
    "paid": "completed",
    "delivered": "completed",
    "shipped": "completed",
    "fulfilled": "completed",
    "success": "completed",
    "ok": "completed",
    "closed": "completed",
    "canceled": "cancelled",
    "cancel": "cancelled",
    "void": "cancelled",
    "voided": "cancelled",
    "failed": "cancelled",
    "return": "returned",
    "refunded": "returned",
    "refund": "returned",
}


class DataImportError(Exception):
    """The file cannot be imported; nothing was written. The message lists what to fix."""

    exit_code = ExitCode.IMPORT

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass
class ImportReport:
    """What an import read and wrote (rows per table)."""

    path: str
    kind: str
    rows_read: int
    written: dict[str, int] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)  # contract field -> file column used
    replaced: bool = False

    def summary(self) -> str:
        parts = ", ".join(f"{table}={n}" for table, n in self.written.items())
        return f"imported {self.kind} from {self.path}: {self.rows_read} rows read; written {parts}"


# -- reading ----------------------------------------------------------------------------------------
def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def resolve_columns(
    file_columns: list[str],
    fields: dict[str, tuple[bool, tuple[str, ...]]],
    column_map: dict[str, str] | None,
    path: str,
) -> dict[str, str]:
    """Contract field -> file column: explicit map first, then known spellings; errors name what is missing."""
    column_map = dict(column_map or {})
    unknown = sorted(set(column_map) - set(fields))
    if unknown:
        raise DataImportError(
            f"{path}: --map names unknown field(s) {', '.join(unknown)}; fields for this import: {', '.join(fields)}"
        )
    missing_mapped = sorted(f"{k}={v}" for k, v in column_map.items() if v not in file_columns)
    if missing_mapped:
        raise DataImportError(
            f"{path}: mapped column(s) not in the file: {', '.join(missing_mapped)}; "
            f"file columns: {', '.join(file_columns)}"
        )
    by_norm: dict[str, str] = {}
    for col in file_columns:
        by_norm.setdefault(_normalise(col), col)
    taken = set(column_map.values())
    resolved = dict(column_map)
    for name, (_required, aliases) in fields.items():
        if name in resolved:
            continue
        for candidate in (name, *aliases):
            col = _match_column(candidate, by_norm, taken)
            if col is not None:
                resolved[name] = col
                taken.add(col)
                break
    missing = [name for name, (required, _) in fields.items() if required and name not in resolved]
    if missing:
        hint = " ".join(f"--map {name}=<column>" for name in missing)
        raise DataImportError(
            f"{path}: required column(s) not found: {', '.join(missing)}; "
            f"file columns: {', '.join(file_columns)} (use {hint})"
        )
    return resolved


def _match_column(candidate: str, by_norm: dict[str, str], taken: set[str]) -> str | None:
    if candidate.endswith("*"):  # a prefix such as number_of_*: the first free column that starts with it
        prefix = _normalise(candidate[:-1])
        return next((col for norm, col in by_norm.items() if norm.startswith(prefix) and col not in taken), None)
    col = by_norm.get(_normalise(candidate))
    return col if col is not None and col not in taken else None


@dataclass(frozen=True)
class _TextLayout:
    """How a text file is read: its encoding, its separator, and the header names if it has none."""

    encoding: str
    sep: str
    names: tuple[str, ...] | None = None


WHITESPACE = r"\s+"


def _text_layout(path: Path, options: ParseOptions) -> _TextLayout:
    """Encoding (declared or detected), separator (sniffed; runs of spaces for CDNOW-style .txt exports)."""
    import gzip

    encoding = detect_encoding(path, options.encoding)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding=encoding) as fh:
            header = fh.readline().lstrip("\ufeff").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise FormatError(f"the file is not {encoding} ({exc.reason}); pass its encoding with --encoding") from None
    if any(sep in header for sep in ",;\t|"):
        try:
            sep = csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter
        except csv.Error:
            sep = ","
    else:
        sep = WHITESPACE if re.search(r"\s", header.strip()) else ","
    if options.header is not None:
        return _TextLayout(encoding, sep, tuple(options.header))
    cells = [c.strip().strip('"') for c in (header.split() if sep == WHITESPACE else header.split(sep))]
    if cells and all(re.fullmatch(r"[\d.,:/+ -]+", c) for c in cells):
        raise FormatError(
            f"the first line {header[:60]!r} looks like data, not a header; name the columns with "
            "--columns, e.g. --columns customer_id,timestamp,quantity,amount"
        )
    return _TextLayout(encoding, sep)


def _file_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    if ".csv" in suffixes or ".tsv" in suffixes or ".txt" in suffixes:
        return "csv"
    raise DataImportError(f"{path}: unsupported file type; use .csv, .tsv or .txt (optionally .gz) or .parquet")


def _csv_options(layout: _TextLayout) -> dict:
    header = {"header": None, "names": list(layout.names)} if layout.names else {}
    return {"sep": layout.sep, "encoding": layout.encoding, **header}


def _file_columns(path: Path, layout: _TextLayout | None) -> list[str]:
    if layout is None:
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    return [str(c) for c in pd.read_csv(path, nrows=0, **_csv_options(layout)).columns]


def _iter_chunks(path: Path, columns: list[str], layout: _TextLayout | None) -> Iterator[pd.DataFrame]:
    """The file's selected columns in chunks; CSV cells stay strings so parsing can report bad cells."""
    if layout is None:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=READ_CHUNK_ROWS, columns=columns):
            yield batch.to_pandas()
        return
    yield from pd.read_csv(
        path,
        usecols=columns,
        dtype=str,
        keep_default_na=False,
        na_values=[""],
        chunksize=READ_CHUNK_ROWS,
        **_csv_options(layout),
    )


def _read(
    path: str | Path, fields: dict, column_map: dict[str, str] | None, options: ParseOptions
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Read the mapped columns of a file, renamed to contract fields, logging progress and ignored columns."""
    path = Path(path)
    if not path.exists():
        raise DataImportError(f"{path}: file not found")
    layout = None if _file_format(path) == "parquet" else _text_layout(path, options)
    try:
        file_columns = _file_columns(path, layout)
        resolved = resolve_columns(file_columns, fields, column_map, str(path))
        inverse = {col: name for name, col in resolved.items()}
        chunks, rows = [], 0
        for chunk in _iter_chunks(path, list(resolved.values()), layout):
            chunks.append(chunk.rename(columns=inverse))
            rows += len(chunk)
            logger.info("%s: %d rows parsed", path.name, rows)
    except UnicodeDecodeError as exc:
        raise FormatError(
            f"the file is not {layout.encoding} ({exc.reason}); pass its encoding with --encoding"
        ) from None
    frame = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=list(resolved))
    logger.info("%s: columns used %s", path.name, ", ".join(f"{k}<-{v}" for k, v in resolved.items()))
    used = set(resolved.values())
    ignored = [c for c in file_columns if c not in used]
    if ignored:
        logger.warning(
            "%s: ignored column(s) the import does not use: %s (use one with --map FIELD=COLUMN)",
            path.name,
            ", ".join(ignored),
        )
    return frame, resolved


# -- parsing ----------------------------------------------------------------------------------------
class _Problems:
    """Collects row-level problems across columns; row numbers are 1-based data rows (header not counted)."""

    def __init__(self) -> None:
        self.items: list[tuple[int, str]] = []
        self.bad_rows: set[int] = set()

    def add(self, mask: np.ndarray | pd.Series, values: pd.Series, describe) -> None:
        mask = np.asarray(mask, dtype=bool)
        for index in np.flatnonzero(mask)[: MAX_LISTED_PROBLEMS * 5]:
            self.items.append((int(index) + 1, describe(values.iloc[index])))
        self.bad_rows.update(int(i) + 1 for i in np.flatnonzero(mask))

    def raise_if_any(self, path: str, n_rows: int) -> None:
        if not self.bad_rows:
            return
        listed = sorted(self.items)[:MAX_LISTED_PROBLEMS]
        lines = [f"row {row}: {reason}" for row, reason in listed]
        more = len(self.items) - len(listed)
        message = (
            f"{path}: {len(self.bad_rows)} of {n_rows} rows cannot be imported; nothing was written "
            "(rows numbered from 1 after the header)\n  "
            + "\n  ".join(lines)
            + (f"\n  ... and {more} more problem(s)" if more > 0 else "")
        )
        raise DataImportError(message, [f"row {row}: {reason}" for row, reason in sorted(self.items)])


def _is_missing(series: pd.Series) -> np.ndarray:
    missing = series.isna().to_numpy()
    if series.dtype == object:
        missing |= series.astype(str).str.strip().eq("").to_numpy()
    return missing


def _require(frame: pd.DataFrame, name: str, problems: _Problems) -> np.ndarray:
    missing = _is_missing(frame[name])
    problems.add(missing, frame[name], lambda _v, n=name: f"{n} is empty")
    return missing


def stable_id(value: str) -> int:
    """A stable positive 62-bit integer for a non-numeric id (same string -> same id everywhere)."""
    digest = hashlib.blake2b(value.strip().encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << 62) - 1)


def _parse_ids(series: pd.Series) -> pd.Series:
    """Integer ids as int64 (nullable); non-numeric strings mapped with ``stable_id``."""
    if pd.api.types.is_integer_dtype(series.dtype):
        return series.astype("Int64")
    codes, uniques = pd.factorize(series.astype("string").str.strip(), use_na_sentinel=True)
    mapped = []
    for value in uniques:
        text = str(value)
        mapped.append(
            int(text)
            if re.fullmatch(r"[+-]?\d{1,18}", text)
            else int(float(text))
            if re.fullmatch(r"\d{1,15}\.0+", text)
            else stable_id(text)
        )
    lookup = pd.array(mapped + [pd.NA], dtype="Int64")
    return pd.Series(lookup[codes], index=series.index)


def _parse_number(
    frame: pd.DataFrame,
    name: str,
    problems: _Problems,
    options: ParseOptions,
    *,
    required: bool,
    minimum: float | None = None,
    integer: bool = False,
) -> pd.Series:
    """One number convention for the whole column (``formats.parse_numbers``); NaN and +/-inf are refused."""
    raw = frame[name]
    missing = _is_missing(raw)
    if required:
        problems.add(missing, raw, lambda _v: f"{name} is empty")
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        values = raw.astype(float)
        not_number = np.zeros(len(raw), dtype=bool)
        non_finite = ~missing & ~np.isfinite(values.fillna(0).to_numpy())
    else:
        parsed = parse_numbers(raw, missing, name, options)
        values, not_number, non_finite = parsed.values, parsed.not_number, parsed.non_finite
    problems.add(not_number, raw, lambda v: f"{name} {v!r} is not a number")
    problems.add(non_finite, raw, lambda v: f"{name} {v if isinstance(v, str) else float(v)!r} is not a finite number")
    not_number = not_number | non_finite
    ok = ~missing & ~not_number
    if integer:
        fractional = ok & (values.fillna(0) % 1 != 0).to_numpy()
        problems.add(fractional, raw, lambda v: f"{name} {v!r} is not a whole number")
    if minimum is not None:
        below = ok & (values.fillna(minimum) < minimum).to_numpy()
        problems.add(below, raw, lambda v: f"{name} {v!r} is below {minimum:g}")
    return values


def _parse_timestamps(frame: pd.DataFrame, name: str, problems: _Problems, options: ParseOptions) -> pd.Series:
    """UTC timestamps: naive values are taken as UTC, zoned ones converted; one day/month order per column."""
    raw = frame[name]
    missing = _is_missing(raw)
    problems.add(missing, raw, lambda _v: f"{name} is empty")
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        parsed = raw.dt.tz_localize("UTC") if raw.dt.tz is None else raw.dt.tz_convert("UTC")
    else:
        parsed = parse_datetimes(raw.astype("string").where(~missing), name, options)
    bad = parsed.isna().to_numpy() & ~missing
    problems.add(bad, raw, lambda v: f"{name} {v!r} is not a date/time")
    return parsed.dt.floor("us")


def _map_values(
    frame: pd.DataFrame, name: str, aliases: dict[str, str], problems: _Problems, allowed: tuple[str, ...]
) -> pd.Series:
    raw = frame[name].astype("string")
    key = raw.str.strip().str.lower().str.replace(r"[\s\-]+", "_", regex=True)
    mapped = key.map(lambda k: aliases.get(k) if isinstance(k, str) else None)
    bad = mapped.isna().to_numpy() & ~_is_missing(frame[name])
    problems.add(bad, raw, lambda v: f"{name} {v!r} is not one of {', '.join(allowed)}")
    return mapped


# -- writing ----------------------------------------------------------------------------------------
def _existing_ids(warehouse: Warehouse, table: str, column: str) -> np.ndarray:
    result = warehouse.query_arrow(
        f"SELECT DISTINCT {column} FROM {warehouse.qualified(table)} WHERE {column} IS NOT NULL"
    )
    return np.asarray(result.column(0).to_numpy(zero_copy_only=False), dtype=np.int64)


def _max_id(warehouse: Warehouse, table: str, column: str) -> int:
    return int(warehouse.scalar(f"SELECT COALESCE(MAX({column}), 0) FROM {warehouse.qualified(table)}") or 0)


def _new_customers(
    warehouse: Warehouse, customer_ids: pd.Series, seen_at: pd.Series, country: pd.Series | None = None
) -> pd.DataFrame:
    """Customers not yet in the warehouse, signed up when first seen."""
    frame = pd.DataFrame({"customer_id": customer_ids.astype("int64"), "signup_at": seen_at})
    if country is not None:
        frame["country"] = country.astype("string").str.strip()
    first = frame.sort_values("signup_at", kind="stable").drop_duplicates("customer_id")
    first = first[~first["customer_id"].isin(_existing_ids(warehouse, "customers", "customer_id"))]
    if "country" not in first:
        first = first.assign(country="unknown")
    first = first.assign(country=first["country"].fillna("unknown"), acquisition_channel="unknown")
    return first.reset_index(drop=True)


def _check_ready(warehouse: Warehouse) -> None:
    missing = [t.name for t in RAW_TABLES if not warehouse.table_exists(t.name)]
    if missing:
        warehouse.init_schema()


def _write(warehouse: Warehouse, tables: dict[str, pd.DataFrame]) -> dict[str, int]:
    written = {}
    with warehouse.transaction():
        for name, frame in tables.items():
            written[name] = warehouse.bulk_load(name, frame) if len(frame) else 0
    return written


# -- public importers -------------------------------------------------------------------------------
def _reports_format_errors(importer):
    """Format problems (a column's convention, the encoding) become one ``DataImportError`` naming the file."""

    @functools.wraps(importer)
    def run(warehouse: Warehouse, path: str | Path, *args, options: ParseOptions | None = None, **kwargs):
        try:
            return importer(warehouse, path, *args, options=options or ParseOptions(), **kwargs)
        except FormatError as exc:
            raise DataImportError(f"{path}: {exc}; nothing was written") from None

    return run


@_reports_format_errors
def import_transactions(
    warehouse: Warehouse,
    path: str | Path,
    column_map: dict[str, str] | None = None,
    replace: bool = False,
    options: ParseOptions | None = None,
) -> ImportReport:
    """Import a purchase log (one row per order line, or per order) into orders and order_items.

    Rows sharing ``order_id`` form one order; without an order id, rows with the same customer and
    timestamp do. ``amount`` is the line total (or ``unit_price`` x ``quantity``). ``replace`` clears
    all six raw tables first, since everything else hangs off customers and orders.
    """
    _check_ready(warehouse)
    frame, resolved = _read(path, TRANSACTION_FIELDS, column_map, options)
    if "amount" not in resolved and "unit_price" not in resolved:
        raise DataImportError(
            f"{path}: need an amount column (or unit_price); file columns mapped: "
            f"{', '.join(resolved.values())} (use --map amount=<column>)"
        )
    problems = _Problems()
    n = len(frame)
    _require(frame, "customer_id", problems)
    customer_id = _parse_ids(frame["customer_id"])
    ordered_at = _parse_timestamps(frame, "timestamp", problems, options)
    quantity = (
        _parse_number(frame, "quantity", problems, options, required=False, minimum=1, integer=True).fillna(1)
        if "quantity" in resolved
        else pd.Series(1.0, index=frame.index)
    )
    if "amount" in resolved:
        amount = _parse_number(frame, "amount", problems, options, required=True, minimum=0)
    else:
        amount = _parse_number(frame, "unit_price", problems, options, required=True, minimum=0) * quantity
    status = (
        _map_values(frame, "status", STATUS_ALIASES, problems, ORDER_STATUSES).fillna("completed")
        if "status" in resolved
        else pd.Series("completed", index=frame.index)
    )
    problems.raise_if_any(str(path), n)

    lines = pd.DataFrame(
        {
            "customer_id": customer_id.astype("int64"),
            "ordered_at": ordered_at,
            "quantity": quantity.astype("int64"),
            "amount": amount,
            "status": status,
        }
    )
    if "order_id" in resolved and not _is_missing(frame["order_id"]).all():
        lines["order_id"] = _parse_ids(frame["order_id"])
    else:
        lines["order_id"] = pd.NA
    no_id = lines["order_id"].isna()
    if no_id.any():  # an order is what one customer bought at one moment
        keys = lines.loc[no_id, ["customer_id", "ordered_at"]]
        group = keys.groupby(["customer_id", "ordered_at"], sort=False).ngroup()
        base = 0 if replace else _max_id(warehouse, "orders", "order_id")
        lines.loc[no_id, "order_id"] = base + 1 + group.to_numpy()
    lines["order_id"] = lines["order_id"].astype("int64")

    conflict = lines.groupby("order_id")["customer_id"].transform("nunique") > 1
    problems.add(conflict.to_numpy(), lines["order_id"], lambda v: f"order {v} belongs to several customers")
    if not replace:
        clash = lines["order_id"].isin(_existing_ids(warehouse, "orders", "order_id")).to_numpy()
        problems.add(
            clash, lines["order_id"], lambda v: f"order {v} is already in the warehouse (use replace to start over)"
        )
    problems.raise_if_any(str(path), n)

    orders = (
        lines.groupby("order_id", sort=False)
        .agg(
            customer_id=("customer_id", "first"),
            ordered_at=("ordered_at", "min"),
            status=("status", "first"),
            total_amount=("amount", "sum"),
        )
        .reset_index()
    )
    orders["total_amount"] = orders["total_amount"].round(2)
    items = pd.DataFrame(
        {
            "order_id": lines["order_id"],
            "line_number": lines.groupby("order_id", sort=False).cumcount() + 1,
            "quantity": lines["quantity"],
            "unit_price": (lines["amount"] / lines["quantity"]).round(4),
        }
    )
    products = pd.DataFrame(columns=["product_id", "title", "category", "price"])
    if "category" in resolved:
        items["category"] = frame["category"].astype("string").str.strip()
    if "product_id" in resolved:
        items["product_id"] = _parse_ids(frame["product_id"])
        products = _new_products(warehouse, frame, items, replace)
        if "category" not in resolved and not replace:
            known = warehouse.query_df(warehouse.render("SELECT product_id, category FROM {products}"))
            items["category"] = items["product_id"].map(dict(zip(known.product_id, known.category, strict=True)))

    with warehouse.transaction():
        for table in reversed(RAW_TABLES) if replace else ():
            warehouse.execute(f"DELETE FROM {warehouse.qualified(table.name)}")
        customers = _new_customers(
            warehouse, lines["customer_id"], lines["ordered_at"], frame["country"] if "country" in resolved else None
        )
        written = _write(
            warehouse, {"customers": customers, "products": products, "orders": orders, "order_items": items}
        )
    report = ImportReport(str(path), "transactions", n, written, resolved, replace)
    logger.info("%s", report.summary())
    return report


def _new_products(warehouse: Warehouse, frame: pd.DataFrame, items: pd.DataFrame, replace: bool) -> pd.DataFrame:
    """Products seen in the file but not in the catalogue: title from the name (or SKU), median price."""
    known = items["product_id"].notna()
    if not known.any():
        return pd.DataFrame(columns=["product_id", "title", "category", "price"])
    title = (frame["product_name"] if "product_name" in frame else frame["product_id"]).astype("string").str.strip()
    fallback = "product " + items["product_id"].astype("string")
    seen = pd.DataFrame(
        {
            "product_id": items["product_id"],
            "title": title.fillna(fallback).where(title.fillna("").str.len() > 0, fallback),
            "category": items["category"] if "category" in items else pd.Series(pd.NA, index=items.index),
            "price": items["unit_price"],
        }
    )[known]
    products = (
        seen.groupby("product_id", sort=False)
        .agg(title=("title", "first"), category=("category", "first"), price=("price", "median"))
        .reset_index()
    )
    products["category"] = products["category"].fillna("unknown")
    products["price"] = products["price"].round(2)
    if not replace:
        products = products[~products["product_id"].isin(_existing_ids(warehouse, "products", "product_id"))]
    return products.astype({"product_id": "int64"})


@_reports_format_errors
def import_events(
    warehouse: Warehouse,
    path: str | Path,
    column_map: dict[str, str] | None = None,
    replace: bool = False,
    event_map: dict[str, str] | None = None,
    options: ParseOptions | None = None,
) -> ImportReport:
    """Import a clickstream export; event names are mapped to the contract's event types.

    Known spellings are mapped (``page_view`` -> view, ``purchase`` -> checkout, ...); ``event_map`` adds
    your own (``{"wishlist": "view"}``). Unknown names fail the import with the list of them. Without a
    session column, sessions are cut at 30 minutes of inactivity. ``replace`` clears events only.
    """
    _check_ready(warehouse)
    aliases = dict(EVENT_ALIASES)
    for name, target in (event_map or {}).items():
        if target not in EVENT_TYPES:
            raise DataImportError(f"event map {name}={target}: {target!r} is not one of {', '.join(EVENT_TYPES)}")
        aliases[_normalise_event(name)] = target
    frame, resolved = _read(path, EVENT_FIELDS, column_map, options)
    problems = _Problems()
    n = len(frame)
    _require(frame, "customer_id", problems)
    customer_id = _parse_ids(frame["customer_id"])
    event_at = _parse_timestamps(frame, "timestamp", problems, options)
    _require(frame, "event_type", problems)
    names = frame["event_type"].astype("string").str.strip()
    event_type = names.map(lambda v: aliases.get(_normalise_event(v)) if isinstance(v, str) else None)
    unknown = event_type.isna().to_numpy() & ~_is_missing(frame["event_type"])
    if unknown.any():
        counts = names[unknown].value_counts()
        listed = ", ".join(f"{name!r} ({count} rows)" for name, count in counts.head(20).items())
        raise DataImportError(
            f"{path}: unknown event name(s): {listed}; nothing was written. Contract event types: "
            f"{', '.join(EVENT_TYPES)}. Map them with --event-map NAME=TYPE (e.g. --event-map "
            f"{counts.index[0]}=view)."
        )
    product_id = (
        _parse_ids(frame["product_id"])
        if "product_id" in resolved
        else pd.Series(pd.NA, index=frame.index, dtype="Int64")
    )
    problems.raise_if_any(str(path), n)

    events = pd.DataFrame(
        {
            "customer_id": customer_id.astype("int64"),
            "event_type": event_type,
            "product_id": product_id,
            "event_at": event_at,
        }
    )
    if "session_id" in resolved and not _is_missing(frame["session_id"]).all():
        events["session_id"] = frame["session_id"].astype("string").str.strip()
    else:
        events = events.sort_values(["customer_id", "event_at"], kind="stable")
        gap = events.groupby("customer_id")["event_at"].diff() > pd.Timedelta(minutes=SESSION_GAP_MINUTES)
        new_session = gap | events["customer_id"].ne(events["customer_id"].shift())
        number = new_session.cumsum()
        events["session_id"] = "imp-" + events["customer_id"].astype("string") + "-" + number.astype("string")
        events = events.sort_index()
    ids = _parse_ids(frame["event_id"]) if "event_id" in resolved else None
    return _load_customer_activity(
        warehouse,
        "events",
        events,
        id_column="event_id",
        time_column="event_at",
        ids=ids,
        path=path,
        resolved=resolved,
        replace=replace,
    )


def _normalise_event(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


@_reports_format_errors
def import_reviews(
    warehouse: Warehouse,
    path: str | Path,
    column_map: dict[str, str] | None = None,
    replace: bool = False,
    options: ParseOptions | None = None,
) -> ImportReport:
    """Import product reviews (customer, rating 1-5, optional text and product). ``replace`` clears reviews only."""
    _check_ready(warehouse)
    frame, resolved = _read(path, REVIEW_FIELDS, column_map, options)
    problems = _Problems()
    n = len(frame)
    _require(frame, "customer_id", problems)
    customer_id = _parse_ids(frame["customer_id"])
    reviewed_at = _parse_timestamps(frame, "timestamp", problems, options)
    rating = _parse_number(frame, "rating", problems, options, required=True, integer=True)
    out_of_range = (rating.notna() & ((rating < 1) | (rating > 5))).to_numpy()
    problems.add(out_of_range, frame["rating"], lambda v: f"rating {v!r} is not between 1 and 5")
    product_id = (
        _parse_ids(frame["product_id"])
        if "product_id" in resolved
        else pd.Series(pd.NA, index=frame.index, dtype="Int64")
    )
    problems.raise_if_any(str(path), n)
    reviews = pd.DataFrame(
        {
            "customer_id": customer_id.astype("int64"),
            "product_id": product_id,
            "rating": rating.astype("int64"),
            "review_text": frame["review_text"].astype("string") if "review_text" in resolved else pd.NA,
            "reviewed_at": reviewed_at,
        }
    )
    ids = _parse_ids(frame["review_id"]) if "review_id" in resolved else None
    return _load_customer_activity(
        warehouse,
        "reviews",
        reviews,
        id_column="review_id",
        time_column="reviewed_at",
        ids=ids,
        path=path,
        resolved=resolved,
        replace=replace,
    )


def _load_customer_activity(
    warehouse: Warehouse,
    table: str,
    rows: pd.DataFrame,
    *,
    id_column: str,
    time_column: str,
    ids: pd.Series | None,
    path: str | Path,
    resolved: dict[str, str],
    replace: bool,
) -> ImportReport:
    """Events and reviews load alike: ids from the file or after the current maximum, customers not yet
    known created from their first activity, everything in one transaction (``replace`` clears this table only)."""
    n = len(rows)
    rows[id_column] = (
        ids.astype("int64")
        if ids is not None
        else (0 if replace else _max_id(warehouse, table, id_column)) + 1 + np.arange(n)
    )
    with warehouse.transaction():
        if replace:
            warehouse.execute(f"DELETE FROM {warehouse.qualified(table)}")
        customers = _new_customers(warehouse, rows["customer_id"], rows[time_column])
        written = _write(warehouse, {"customers": customers, table: rows})
    report = ImportReport(str(path), table, n, written, resolved, replace)
    logger.info("%s", report.summary())
    return report
