"""Direct identifiers out of what the models read and what leaves the warehouse.

Two tools, both deliberately simple and deterministic:

- :func:`mask_identifiers` replaces e-mail addresses, card numbers, phone numbers and street addresses in
  free text with placeholders (``[email]``, ``[card]``, ``[phone]``, ``[address]``). It runs on every text
  view as the feature frame is built, so the encoder, the training sets, the drift reference logged to
  MLflow and the reason texts never see them. Why regexes and not an NER model: the identifiers that
  matter here have a shape; a model would be slower, non-deterministic across versions and still miss
  some. Card numbers are masked before phone numbers (a 16-digit run would otherwise read as a phone).
- :func:`pseudonymise_ids` turns customer ids into keyed hashes (HMAC-SHA256, 62 bits, stable for one
  key) for artifacts that leave the warehouse (MLflow reference samples and input examples, CRM exports).
  The key comes from ``$CHURN_PSEUDONYM_KEY``, else the Airflow connection ``churn_pseudonym`` given as
  ``$AIRFLOW_CONN_CHURN_PSEUDONYM`` (its password, URI or JSON form), else a random key created once in
  ``privacy.key_file`` (git-ignored, mode 0600), with a warning, so a local demo works and nothing
  falls back to raw ids silently.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import Config

logger = logging.getLogger(__name__)

KEY_ENV = "CHURN_PSEUDONYM_KEY"
AIRFLOW_CONN_ENV = "AIRFLOW_CONN_CHURN_PSEUDONYM"
MIN_KEY_BYTES = 16

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# 13 to 19 digits, optionally grouped by spaces or dashes (every card scheme's length range).
CARD_RE = re.compile(r"(?<![\w.])\d(?:[ -]?\d){12,18}(?![\w.])")
# 7 to 15 digits (E.164), optional leading + or (area code), separated by at most two of " .-()".
# Amounts ("54.90"), day counts and ratings have fewer digits, so the text view's own numbers survive.
PHONE_RE = re.compile(r"(?<![\w.+])(?:\+|\b00)?\(?\d(?:[ .()\-]{0,2}\d){6,14}(?![\w])")
_STREET_WORDS = (
    "Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Square|Sq|Terrace|Close"
)
# "221B Baker Street", "12 Elm Rd." and the continental "Hauptstraße 5" / "Rue de Rivoli 8" forms.
ADDRESS_RE = re.compile(
    rf"\b\d{{1,5}}[A-Za-z]?,?\s+(?:[A-Z][A-Za-z'-]+\s+){{1,3}}(?:{_STREET_WORDS})\b\.?"
    r"|\b[A-Z][a-zäöüß]+(?:straße|strasse|str\.|weg|gasse|platz|allee)\s+\d{1,5}[a-z]?\b"
    r"|\b(?:Rue|Via|Calle|Avenida|Rua)\s+(?:[a-z]{1,3}\s+)?[A-Z][A-Za-z'-]+(?:\s+[A-Z][A-Za-z'-]+)?\s+\d{1,5}\b"
)
PLACEHOLDERS = {"email": "[email]", "card": "[card]", "phone": "[phone]", "address": "[address]"}
_ORDERED = (
    (EMAIL_RE, PLACEHOLDERS["email"]),
    (CARD_RE, PLACEHOLDERS["card"]),
    (ADDRESS_RE, PLACEHOLDERS["address"]),
    (PHONE_RE, PLACEHOLDERS["phone"]),
)
# Cheap pre-filter: text without '@' and without 7 digits in a row (ignoring separators) has nothing to mask,
# except an address, whose pattern needs a digit next to a capitalised word.
_MAYBE = re.compile(r"@|\d(?:[ .()\-]{0,2}\d){6}|\d\s+[A-Z]|[a-zß]\.?\s+\d")


def mask_identifiers(text: str | None) -> str | None:
    """``text`` with e-mail addresses, card numbers, street addresses and phone numbers replaced by placeholders."""
    if not text or not _MAYBE.search(text):
        return text
    for pattern, placeholder in _ORDERED:
        text = pattern.sub(placeholder, text)
    return text


def mask_text_column(values: pd.Series) -> pd.Series:
    """:func:`mask_identifiers` over a text column (NaN/None kept)."""
    return values.map(mask_identifiers, na_action="ignore")


def find_identifiers(text: str) -> list[str]:
    """The identifier-like substrings left in ``text`` (for checks and tests: empty after masking)."""
    return [m.group(0) for pattern, _ in _ORDERED for m in pattern.finditer(text or "")]


# -- pseudonyms ------------------------------------------------------------------------------------------------
class PseudonymKeyError(ValueError):
    """The pseudonymisation key is missing or too short."""


def _key_from_airflow_connection(raw: str) -> str:
    """The password (or the whole secret) of an Airflow connection given in its env-var form."""
    raw = raw.strip()
    if raw.startswith("{"):
        data = json.loads(raw)
        return str(data.get("password") or data.get("extra", {}).get("key") or "")
    parts = urlsplit(raw)
    return unquote(parts.password or "") if "://" in raw else raw


def pseudonym_key(config: Config | None = None) -> bytes:
    """The keyed-hash secret (see the module docstring for where it comes from)."""
    raw = os.environ.get(KEY_ENV)
    source = f"${KEY_ENV}"
    if not raw and os.environ.get(AIRFLOW_CONN_ENV):
        raw, source = _key_from_airflow_connection(os.environ[AIRFLOW_CONN_ENV]), f"${AIRFLOW_CONN_ENV}"
    if not raw:
        path = _key_file(config)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
            logger.warning(
                "no %s or %s set: created a random pseudonymisation key in %s (keep it; set %s in production)",
                KEY_ENV,
                AIRFLOW_CONN_ENV,
                path,
                KEY_ENV,
            )
        raw, source = path.read_text().strip(), str(path)
    key = raw.encode()
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(f"pseudonymisation key from {source} is {len(key)} bytes; it needs >= {MIN_KEY_BYTES}")
    return key


def _key_file(config: Config | None) -> Path:
    if config is None:
        from pipelines.config import PROJECT_ROOT

        return PROJECT_ROOT / "data" / "pseudonym.key"
    return config.resolve_path(config.privacy.key_file)


def pseudonymise_ids(ids, key: bytes) -> np.ndarray:
    """Keyed 62-bit hashes of customer ids (int64, positive, stable for one key; not reversible without it)."""
    values = np.asarray(ids, dtype=np.int64).reshape(-1)
    out = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values.tolist()):
        digest = hmac.new(key, str(value).encode(), hashlib.sha256).digest()
        out[i] = int.from_bytes(digest[:8], "big") >> 2
    return out


def pseudonymise_frame(frame: pd.DataFrame, key: bytes, column: str = "customer_id") -> pd.DataFrame:
    """A copy of ``frame`` whose ``column`` holds pseudonyms (a frame without the column is returned as is)."""
    if column not in frame.columns:
        return frame
    out = frame.copy()
    out[column] = pseudonymise_ids(out[column].to_numpy(), key)
    return out
