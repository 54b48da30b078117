"""Coercing sidecar values to adapter field values (SPEC 6.6.4, limits of SPEC 3.2 and 4.6).

Every reader takes any JSON value and returns a value that fits the field, or ``None`` (``[]`` for lists) when
the value has the wrong type or nothing usable is left. None of them raises.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from adapters.models import PHRASE_LIMIT, PHRASE_MAX_LENGTH, TAG_LIMIT, TAG_MAX_LENGTH
from adapters.scanner.civitai import file_hash
from adapters.tags import normalize_tags

INT_MAX = 2**31 - 1
NSFW_MAX = 63
JSON_MAX_DEPTH = 64
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_URL = re.compile(r"^https?://[^\s/]+")


def dig(value: Any, *keys: str) -> Any:
    """``value[k1][k2]…``, or None where a level is missing or not an object."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def first(*values: Any) -> Any:
    """The first non-empty value (``0`` and ``False`` are values), else None."""
    return next((value for value in values if not is_empty(value)), None)


def text(value: Any, limit: int) -> str | None:
    """A trimmed string of at most ``limit`` characters (NUL removed: PostgreSQL cannot store it)."""
    if not isinstance(value, str):
        return None
    cleaned = value.replace("\x00", "").strip()[:limit].rstrip()
    return cleaned or None


def flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def identifier(value: Any) -> int | None:
    """A Civitai id: a positive integer that fits the database column."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= INT_MAX else None


def nsfw(value: Any) -> int | None:
    """A Civitai ``nsfwLevel`` bitmask, 1..63 (0 is the "not rated" default, so it is no value)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= NSFW_MAX else None


def weight(value: Any) -> float | None:
    """A finite number, or a string holding one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def timestamp(value: Any) -> datetime | None:
    """An ISO 8601 date or datetime as an aware UTC datetime (no zone: UTC); anything else is ignored."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def tags(value: Any) -> list[str]:
    """Tags from a list of strings or ``{"name": ...}`` objects: normalised, 1..64 characters, at most 100."""
    if not isinstance(value, list):
        return []
    names = [item.get("name") if isinstance(item, dict) else item for item in value]
    raw = [name.replace("\x00", "") for name in names if isinstance(name, str)]
    return [tag for tag in normalize_tags(raw) if len(tag) <= TAG_MAX_LENGTH][:TAG_LIMIT]


def comma_tags(value: Any) -> list[str]:
    """Tags from a comma-separated string (``modelspec.tags``)."""
    return tags(value.split(",")) if isinstance(value, str) else []


def phrases(value: Any) -> list[str]:
    """Trigger phrases: trimmed strings of 1..200 characters, de-duplicated, at most 200."""
    if not isinstance(value, list):
        return []
    found: dict[str, None] = {}
    for item in value:
        phrase = text(item, PHRASE_MAX_LENGTH + 1)
        if phrase and len(phrase) <= PHRASE_MAX_LENGTH:
            found[phrase] = None
    return list(found)[:PHRASE_LIMIT]


def json_object(value: Any) -> dict[str, Any] | None:
    """A copy of a JSON object that the database can store (no NUL characters, bounded depth), else None."""
    if not isinstance(value, dict):
        return None
    cleaned = _scrub(value, 0)
    return cleaned if isinstance(cleaned, dict) else None


class _TooDeep(Exception):
    pass


def _scrub(value: Any, depth: int) -> Any:
    try:
        return _scrub_value(value, depth)
    except _TooDeep:
        return None


def _scrub_value(value: Any, depth: int) -> Any:
    if depth > JSON_MAX_DEPTH:
        raise _TooDeep
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {str(key).replace("\x00", ""): _scrub_value(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub_value(item, depth + 1) for item in value]
    return value


def size_kb(value: Any) -> int | None:
    """Civitai ``sizeKB`` rounded to the nearest integer, halves up."""
    number = weight(value) if not isinstance(value, str) else None
    if number is None or number < 0 or number + 0.5 > INT_MAX:
        return None
    return math.floor(number + 0.5)


def primary_file_values(entry: dict[str, Any] | None) -> dict[str, Any]:
    """The ``primary_file_*`` fields from a Civitai file entry (all None without one)."""
    entry = entry or {}
    sha256 = file_hash(entry, "SHA256")
    url = text(entry.get("downloadUrl"), 1025)
    return {
        "primary_file_name": text(entry.get("name"), 255),
        "primary_file_size_kb": size_kb(entry.get("sizeKB")),
        "primary_file_sha256": sha256 if sha256 and _HEX64.match(sha256) else None,
        "primary_file_download_url": url if url and len(url) <= 1024 and _URL.match(url) else None,
    }
