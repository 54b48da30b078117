"""safetensors header reading and normalisation (SPEC 6.6.2).

Only the 8-byte length and the JSON header are read; tensor data is never touched.
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, BinaryIO

NESTED_JSON_KEYS = frozenset(
    {"ss_tag_frequency", "ss_datasets", "ss_dataset_dirs", "ss_reg_dataset_dirs", "ss_bucket_info", "ss_network_args"}
)
MAX_VALUE_BYTES = 64 * 1024
EMPTY_HASH_PREFIX = "e3b0c44298fc"
HEADER_TAG_COUNT = 20


class HeaderError(Exception):
    """The header violates the format; the message is stored as ``header_error``."""


@dataclass(frozen=True)
class Header:
    metadata: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class HeaderFields:
    output_name: str | None = None
    network_dim: int | None = None
    network_alpha: float | None = None
    network_module: str | None = None
    autov3: str | None = None
    header_tags: list[str] = field(default_factory=list)
    trigger_candidates: list[str] = field(default_factory=list)


def read_header(handle: BinaryIO, file_size: int, max_bytes: int) -> Header:
    """Read and normalise the header of an open safetensors file; errors become ``Header.error``."""
    try:
        return Header(metadata=_read_metadata(handle, file_size, max_bytes))
    except HeaderError as exc:
        return Header(error=f"Invalid safetensors header: {exc}"[:500])


def _read_metadata(handle: BinaryIO, file_size: int, max_bytes: int) -> dict[str, Any]:
    prefix = handle.read(8)
    if len(prefix) < 8:
        raise HeaderError("file is shorter than 8 bytes")
    (length,) = struct.unpack("<Q", prefix)
    if length < 2:
        raise HeaderError("declared length is too small")
    if length > max_bytes:
        raise HeaderError("declared length exceeds limit")
    if length > file_size - 8:
        raise HeaderError("declared length exceeds file size")
    raw = handle.read(length)
    if len(raw) < length:
        raise HeaderError("file is truncated")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HeaderError("not valid UTF-8") from None
    try:
        document = json.loads(text)
    except ValueError:
        raise HeaderError("not valid JSON") from None
    if not isinstance(document, dict):
        raise HeaderError("not a JSON object")
    metadata = document.get("__metadata__")
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise HeaderError("__metadata__ is not an object")
    return normalize_metadata(metadata)


def normalize_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Stringify non-strings, parse nested JSON strings, omit oversized values."""
    normalized: dict[str, Any] = {}
    for key, value in metadata.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        size = len(text.encode("utf-8"))
        if size > MAX_VALUE_BYTES:
            normalized[str(key)] = f"<omitted: {size} bytes>"
            continue
        if key in NESTED_JSON_KEYS and text[:1] in ("{", "["):
            try:
                normalized[str(key)] = json.loads(text)
                continue
            except ValueError:
                pass
        normalized[str(key)] = text
    return normalized


def derive_fields(metadata: dict[str, Any] | None) -> HeaderFields:
    if not metadata:
        return HeaderFields()
    return HeaderFields(
        output_name=_text(metadata.get("ss_output_name")),
        network_dim=_to_int(metadata.get("ss_network_dim")),
        network_alpha=_to_float(metadata.get("ss_network_alpha")),
        network_module=(_text(metadata.get("ss_network_module")) or "")[:100] or None,
        autov3=autov3_from(metadata),
        header_tags=top_tags(metadata.get("ss_tag_frequency")),
        trigger_candidates=trigger_candidates(metadata),
    )


def autov3_from(metadata: dict[str, Any]) -> str | None:
    for key in ("sshs_model_hash", "modelspec.hash_sha256"):
        value = _text(metadata.get(key))
        if not value:
            continue
        value = value.lower().removeprefix("0x")
        if (
            value.startswith(EMPTY_HASH_PREFIX)
            or len(value) < 12
            or any(c not in "0123456789abcdef" for c in value[:12])
        ):
            continue
        return value[:12]
    return None


def top_tags(tag_frequency: Any) -> list[str]:
    if not isinstance(tag_frequency, dict):
        return []
    totals: Counter[str] = Counter()
    for tags in tag_frequency.values():
        if not isinstance(tags, dict):
            continue
        for tag, count in tags.items():
            if isinstance(count, int | float) and not isinstance(count, bool):
                cleaned = str(tag).strip()
                if cleaned:
                    totals[cleaned] += int(count)
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return [tag for tag, _ in ranked[:HEADER_TAG_COUNT]]


def trigger_candidates(metadata: dict[str, Any]) -> list[str]:
    found: dict[str, None] = {}
    phrase = _text(metadata.get("modelspec.trigger_phrase"))
    for part in (phrase or "").split(","):
        if part.strip():
            found[part.strip()] = None
    datasets = metadata.get("ss_datasets")
    if isinstance(datasets, list):
        for dataset in datasets:
            subsets = dataset.get("subsets") if isinstance(dataset, dict) else None
            for subset in subsets if isinstance(subsets, list) else []:
                token = subset.get("class_tokens") if isinstance(subset, dict) else None
                if isinstance(token, str) and token.strip():
                    found[token.strip()] = None
    frequency = metadata.get("ss_tag_frequency")
    if isinstance(frequency, dict):
        for folder in frequency:
            name = _strip_repeats(str(folder))
            if name:
                found[name] = None
    return list(found)


def _strip_repeats(folder: str) -> str:
    head, sep, tail = folder.partition("_")
    if sep and head.isdigit():
        return tail.strip()
    return folder.strip()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text.strip() or None


def _to_int(value: Any) -> int | None:
    try:
        return int(float(str(value)))
    except (TypeError, ValueError, OverflowError):
        return None


def _to_float(value: Any) -> float | None:
    try:
        number = float(str(value))
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None
