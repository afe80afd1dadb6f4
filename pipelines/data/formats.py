"""Whole-column format detection for imports: number conventions, date order, text encoding.

Why whole-column: ``"1,234"`` and ``"01/02/2025"`` mean different things under different conventions.
Deciding per value lets one column hold two conventions at once (``1,234`` read as 1.234 in one row and
1234 in the next; ``01/02/2025`` as 2 January next to ``13/01/2025`` as 13 January). So every column
gets exactly one convention, decided from all of its values; a column its values cannot decide is
refused with the option that settles it (``--decimal``/``--thousands``, ``--dayfirst``/``--date-format``,
``--encoding``). Nothing here guesses.
"""

from __future__ import annotations

import codecs
import gzip
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# Characters that group thousands in every convention: they can never be a decimal mark.
_GROUP_SPACES = " \u00a0\u202f'"
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
# day/month/year or month/day/year (the order is the question), optionally followed by a time.
_DAY_MONTH = re.compile(r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})((?:[ T].*)?)$")
_UTF8_CHECK_BYTES = 1 << 20


class FormatError(ValueError):
    """A column (or the file) has no single reading; the message names the column and the option to pass."""


@dataclass(frozen=True)
class ParseOptions:
    """What the user declared about a file; ``None`` means: detect it from the whole file."""

    decimal: str | None = None  # "." or ","
    thousands: str | None = None  # ",", ".", " ", "'" or "" (no grouping)
    date_format: str | None = None  # strftime format, e.g. "%d/%m/%Y %H:%M"
    dayfirst: bool | None = None  # day/month/year (True) or month/day/year (False)
    encoding: str | None = None  # any Python codec name, e.g. "latin-1"
    header: tuple[str, ...] | None = None  # column names of a file without a header row

    def __post_init__(self) -> None:
        if self.decimal not in (None, ".", ","):
            raise FormatError(f"--decimal {self.decimal!r}: the decimal mark is '.' or ','")
        if self.thousands not in (None, ",", ".", " ", "'", ""):
            raise FormatError(f"--thousands {self.thousands!r}: use ',', '.', ' ', \"'\" or '' (none)")
        if self.decimal is not None and self.decimal == self.thousands:
            raise FormatError(f"--decimal and --thousands are both {self.decimal!r}")
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise FormatError(
                    f"--encoding {self.encoding!r} is not a known encoding (e.g. latin-1, cp1252, utf-16)"
                ) from None


# -- numbers --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Convention:
    decimal: str
    thousands: str

    @property
    def groups(self) -> str:
        return "" if self.thousands == "" else "".join(sorted(set(self.thousands + _GROUP_SPACES)))

    def pattern(self) -> re.Pattern:
        d = re.escape(self.decimal)
        integer = rf"\d{{1,3}}(?:[{re.escape(self.groups)}]\d{{3}})+|\d+" if self.groups else r"\d+"
        return re.compile(rf"[+-]?(?:(?:{integer})(?:{d}\d*)?|{d}\d+)(?:[eE][+-]?\d+)?")

    def parse(self, texts: np.ndarray) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = pa.array(texts, type=pa.string())
        for char in self.groups:
            arr = pc.replace_substring(arr, char, "")
        arr = pc.replace_substring(arr, self.decimal, ".")
        try:
            return pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:  # spellings Arrow's parser rejects ("+5", "1.") that Python reads
            return pd.to_numeric(pd.Series(arr.to_pylist(), dtype=object), errors="coerce").to_numpy(dtype=float)

    def describe(self) -> str:
        grouping = "no thousands separator" if not self.thousands else f"thousands {self.thousands!r}"
        return f"decimal {self.decimal!r}, {grouping}"


def _conventions(options: ParseOptions) -> list[_Convention]:
    if options.decimal is not None:
        other = "," if options.decimal == "." else "."
        return [_Convention(options.decimal, other if options.thousands is None else options.thousands)]
    if options.thousands in (",", "."):
        return [_Convention("." if options.thousands == "," else ",", options.thousands)]
    if options.thousands is not None:  # spaces, apostrophes or none: the decimal mark is still open
        return [_Convention(".", options.thousands), _Convention(",", options.thousands)]
    return [_Convention(".", ","), _Convention(",", ".")]


_DECLARE = "declare it with --decimal , --thousands . (1.234,56) or --decimal . --thousands , (1,234.56)"


@dataclass
class NumberColumn:
    """A parsed numeric column: values (NaN where missing or bad), and which rows were not numbers."""

    values: pd.Series
    not_number: np.ndarray
    non_finite: np.ndarray
    convention: str


def parse_numbers(raw: pd.Series, missing: np.ndarray, column: str, options: ParseOptions) -> NumberColumn:
    """Parse a text column under the one number convention all its values agree on.

    Raises ``FormatError`` when two conventions read the column differently and no value decides
    (``1,234`` alone), or when no convention reads all its values (``1,5`` next to ``2.25``).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), _trimmed(raw))
    encoded = text.dictionary_encode()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    uniques = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    non_finite_u = _fullmatch(uniques, _NON_FINITE.pattern, ignore_case=True)
    candidates = _conventions(options)
    matches = {c: _fullmatch(uniques, c.pattern().pattern) for c in candidates}
    readable = np.logical_or.reduce(list(matches.values())) & ~non_finite_u
    compatible = [c for c in candidates if matches[c][readable].all()] if len(candidates) > 1 else candidates
    if not compatible:
        a, b = candidates[0], candidates[1]
        only_a = uniques[readable & matches[a] & ~matches[b]][0]
        only_b = uniques[readable & matches[b] & ~matches[a]][0]
        raise FormatError(
            f"column {column} mixes number formats: {only_a!r} reads only with {a.describe()}, {only_b!r} only "
            f"with {b.describe()}; make the column consistent, or {_DECLARE} and fix the rows it rejects"
        )
    parsed = {}
    for c in compatible:
        parsed[c] = np.full(len(uniques), np.nan)
        parsed[c][readable] = c.parse(uniques[readable])
    chosen = compatible[0]
    for other in compatible[1:]:
        differs = readable & (parsed[chosen] != parsed[other])
        if differs.any():
            value = uniques[differs][0]
            raise FormatError(
                f"column {column}: {value!r} reads as {parsed[chosen][differs][0]:g} ({chosen.describe()}) or "
                f"{parsed[other][differs][0]:g} ({other.describe()}) and no value in the column decides; {_DECLARE}"
            )
    values_u = np.where(readable & matches[chosen], parsed[chosen], np.nan)
    lookup = np.append(values_u, np.nan)
    values = pd.Series(lookup[codes], index=raw.index, dtype=float)
    ok_u = np.append(readable & matches[chosen], False)
    nf_u = np.append(non_finite_u, False)
    non_finite = nf_u[codes]
    not_number = ~missing & ~ok_u[codes] & ~non_finite
    return NumberColumn(values, not_number, non_finite, chosen.describe())


def _trimmed(series: pd.Series):
    """The column as an Arrow string array without surrounding whitespace (nulls kept), vectorised."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = series.to_numpy(dtype=object)
    try:
        arr = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects: their text
        arr = pa.array([None if pd.isna(v) else str(v) for v in values], type=pa.string())
    return pc.utf8_trim_whitespace(arr)


def _fullmatch(values: np.ndarray, pattern: str, ignore_case: bool = False) -> np.ndarray:
    """Which strings match ``pattern`` entirely (RE2 in Arrow: vectorised, linear time)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    matched = pc.match_substring_regex(pa.array(values, type=pa.string()), f"^(?:{pattern})$", ignore_case=ignore_case)
    return np.asarray(matched.to_numpy(zero_copy_only=False), dtype=bool)


# -- dates --------------------------------------------------------------------------------------------------
def parse_datetimes(text: pd.Series, column: str, options: ParseOptions) -> pd.Series:
    """UTC timestamps with one day/month order for the whole column (NaT where a value does not parse).

    Year-first (ISO) values need no decision. For ``dd/mm/yyyy``-shaped values, any first number above 12
    means day-first, any second number above 12 means month-first; both in one column, or neither while
    some values differ between the readings, is refused naming ``--dayfirst`` / ``--date-format``.
    """
    import pyarrow.compute as pc

    trimmed = _trimmed(text)
    index = text.index
    text = pd.Series(trimmed.to_numpy(zero_copy_only=False), index=index, dtype=object)
    if options.date_format:
        return pd.to_datetime(text, format=options.date_format, utc=True, errors="coerce")
    distinct = np.asarray(pc.unique(trimmed.drop_null()).to_pylist(), dtype=object)
    shaped = _fullmatch(distinct, r"\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})(?:[ T].*)?")
    uniques = pd.Series(distinct[shaped], dtype="string")  # only dd/mm/yyyy-shaped values need an order
    parts = uniques.str.extract(_DAY_MONTH.pattern).dropna(subset=[0])
    rewritten = text
    day_month = np.zeros(len(text), dtype=bool)
    if len(parts):
        first, second = parts[0].astype(int), parts[2].astype(int)
        day_first_hint = uniques[parts.index[(first > 12).to_numpy()]]
        month_first_hint = uniques[parts.index[(second > 12).to_numpy()]]
        dayfirst = options.dayfirst
        fix = "pass --dayfirst (day/month/year), --no-dayfirst (month/day/year) or --date-format (e.g. '%d/%m/%Y')"
        if len(day_first_hint) and len(month_first_hint) and dayfirst is None:
            raise FormatError(
                f"column {column} mixes date orders: {day_first_hint.iloc[0]!r} is day-first, "
                f"{month_first_hint.iloc[0]!r} is month-first; make the column consistent or {fix}"
            )
        if dayfirst is None:
            if len(day_first_hint):
                dayfirst = True
            elif len(month_first_hint):
                dayfirst = False
            elif (first != second).any():
                example = uniques[parts.index[(first != second).to_numpy()]].iloc[0]
                raise FormatError(
                    f"column {column}: {example!r} could be day-first or month-first and no value in the column "
                    f"decides; {fix}"
                )
            else:
                dayfirst = True  # every value reads the same either way
        day, month = (first, second) if dayfirst else (second, first)
        year = parts[3].astype(int)
        year = year.where(parts[3].str.len() == 4, np.where(year < 69, 2000 + year, 1900 + year))
        iso = (
            year.astype(str).str.zfill(4)
            + "-"
            + month.astype(str).str.zfill(2)
            + "-"
            + day.astype(str).str.zfill(2)
            + parts[4].fillna("")
        )
        mapping = dict(zip(uniques[parts.index].tolist(), iso.tolist(), strict=True))
        rewritten = text.map(lambda v: mapping.get(v, v) if isinstance(v, str) else v)
        day_month = text.isin(list(mapping)).to_numpy()
    parsed = pd.to_datetime(rewritten, format="ISO8601", utc=True, errors="coerce")
    # Other spellings ("Dec 1, 2024", "19970101") one by one; a day/month value that failed stays failed
    # (dateutil would swap an impossible month with the day).
    retry = parsed.isna().to_numpy() & text.notna().to_numpy() & ~day_month
    if retry.any():
        parsed.loc[retry] = pd.to_datetime(
            rewritten[retry], utc=True, errors="coerce", format="mixed", dayfirst=bool(options.dayfirst)
        )
    return parsed


# -- encodings ----------------------------------------------------------------------------------------------
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def open_binary(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def detect_encoding(path: Path, declared: str | None = None) -> str:
    """The text encoding of a file: the declared one, a byte-order mark, UTF-16 by its zero bytes, or UTF-8.

    Anything else is refused (a Latin-1 and a cp1252 file are indistinguishable for most bytes, so picking
    one would be a guess): the message names ``--encoding``.
    """
    if declared:
        return declared
    with open_binary(path) as fh:
        head = fh.read(4096)
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    if len(head) >= 4:
        even, odd = head[0::2], head[1::2]
        if odd.count(0) > 0.4 * len(odd) and even.count(0) == 0:
            return "utf-16-le"
        if even.count(0) > 0.4 * len(even) and odd.count(0) == 0:
            return "utf-16-be"
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line = 0, 1
    with open_binary(path) as fh:
        while chunk := fh.read(_UTF8_CHECK_BYTES):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad = chunk[exc.start] if exc.start < len(chunk) else 0
                line += chunk[: exc.start].count(b"\n")
                raise FormatError(
                    f"the file is not UTF-8 (byte 0x{bad:02x} on line {line}, offset {offset + exc.start}); "
                    "pass its encoding, e.g. --encoding latin-1 or --encoding cp1252"
                ) from None
            offset += len(chunk)
            line += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise FormatError(
            "the file is not UTF-8 (it ends inside a character); pass its encoding with --encoding"
        ) from None
    return "utf-8"
