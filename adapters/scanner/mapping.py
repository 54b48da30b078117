"""From sidecars and the safetensors header to adapter fields (SPEC 6.6.4), and applying them (SPEC 6.6.7).

Each field reads its sources in column order (Lora-Manager ``.metadata.json``, ``.civitai.info``, Civitai model
``.json``, A1111 ``.json``, header, fallback) and takes the first value that is usable: of the right type and,
once trimmed and limited, non-empty. A1111 values come first for ``activation_text``, ``negative_text``,
``preferred_weight`` and ``sd_version``. A value of the wrong type is ignored, never an error.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.models import CURATABLE_FIELDS, WEIGHT_MAX, WEIGHT_MIN, Adapter, CivitaiMatch
from adapters.scanner.basemodel import detect_base_model
from adapters.scanner.civitai import VersionMatch, dicts, match_model_version, match_single_version
from adapters.scanner.headers import HeaderFields
from adapters.scanner.mapping_values import (
    comma_tags,
    dig,
    first,
    flag,
    identifier,
    is_empty,
    json_object,
    nsfw,
    phrases,
    primary_file_values,
    tags,
    text,
    timestamp,
    weight,
)
from adapters.scanner.paths import file_stem, root_of
from adapters.scanner.sidecars import SidecarSet

EXTRA_MAX_BYTES = 64 * 1024
EXTRA_TOO_LARGE_WARNING = "Unmapped sidecar keys over 64 KiB not stored: {keys}"
SHA256_MISMATCH_WARNING = "Sidecar sha256 differs from the file"
# Top-level keys each sidecar kind maps to a field; every other key goes to ``extra``.
MAPPED_KEYS = {
    "lora_manager": frozenset(
        {"model_name", "modelDescription", "tags", "notes", "usage_tips", "base_model", "preview_nsfw_level",
         "preview_url", "civitai", "sha256", "exclude"}
    ),
    "civitai_info": frozenset(
        {"model", "name", "description", "creator", "trainedWords", "baseModel", "publishedAt", "createdAt",
         "nsfwLevel", "stats", "supportsGeneration", "id", "modelId", "files"}
    ),
    "civitai_model": frozenset(
        {"name", "description", "creator", "tags", "nsfwLevel", "stats", "supportsGeneration", "id", "modelVersions"}
    ),
    "a1111": frozenset(
        {"description", "activation text", "negative text", "notes", "preferred weight", "weight", "default_weight",
         "sd version"}
    ),
}  # fmt: skip
JSON_FILE_ORDER = ("civitai_info", "civitai_model", "lora_manager", "a1111")
USER_OWNED_FIELDS = ("active", "weight", "ordinal", "locked_fields")
NON_EMPTY_ONLY_FIELDS = frozenset({"author_username", "published_at"})


@dataclass(frozen=True)
class ImportedFields:
    """What the sidecars and the header say about an adapter.

    ``values`` omits curatable fields that no source gives a value (a source never clears one); import-owned fields
    (``civitai_*``, ``primary_file_*``, ``stats``, ``extra``, ``json_file_*``, ``sidecars``, ``preview_path``) and
    ``author_username``/``published_at`` are always present, None when absent.
    """

    values: dict[str, Any]
    warnings: tuple[str, ...]  # includes the sidecar set's warnings: callers report only these


@dataclass(frozen=True)
class _Sources:
    """The objects each column reads; ``{}`` for an absent one."""

    lora_manager: dict[str, Any]
    lm_civitai: dict[str, Any]
    info: dict[str, Any]
    model: dict[str, Any]
    version: dict[str, Any]  # V, the matched version of the Civitai model object
    a1111: dict[str, Any]
    header: dict[str, Any]


def map_fields(
    *,
    model_path: Path,
    sidecars: SidecarSet,
    header: dict[str, Any] | None,
    header_fields: HeaderFields,
    sha256: str | None,
    autov2: str | None,
    autov3: str | None,
) -> ImportedFields:
    """Adapter field values from the sidecars and the header; curatable fields with no value are omitted."""
    hashes = {"sha256": sha256, "autov2": autov2, "autov3": autov3, "file_name": model_path.name}
    sources, matches = _sources(sidecars, header or {}, hashes)
    decided = _decided_match(matches)
    values: dict[str, Any] = {
        **_text_fields(sources, header_fields, model_path),
        **_list_fields(sources, header_fields),
        **_number_fields(sources),
        **_base_fields(sources, model_path),
        **_civitai_fields(sources, decided),
        **_file_fields(sidecars, sources, model_path),
    }
    extra, extra_warnings = _extra(sidecars)
    values["extra"] = extra
    values = {key: value for key, value in values.items() if key not in CURATABLE_FIELDS or not is_empty(value)}
    warnings = [*sidecars.warnings, *(decided.warnings if decided else ()), *extra_warnings]
    warnings += _sha256_warnings(sources.lora_manager, sha256)
    return ImportedFields(values=values, warnings=tuple(dict.fromkeys(warnings)))


def _sources(
    sidecars: SidecarSet, header: dict[str, Any], hashes: dict[str, Any]
) -> tuple[_Sources, list[VersionMatch]]:
    lora_manager = _data(sidecars, "lora_manager")
    lm_civitai = json_object(lora_manager.get("civitai")) or {}
    info = _data(sidecars, "civitai_info")
    model = _data(sidecars, "civitai_model")
    matches = [match_single_version(version, **hashes) for version in (lm_civitai, info) if _identified(version)]
    model_match = match_model_version(model, **hashes) if model else None
    if model_match is not None:
        matches.append(model_match)
    version = (model_match.version if model_match else None) or {}
    sources = _Sources(lora_manager, lm_civitai, info, model, version, _data(sidecars, "a1111"), header)
    return sources, matches


def _data(sidecars: SidecarSet, kind: str) -> dict[str, Any]:
    sidecar = sidecars.first(kind)
    return sidecar.data if sidecar else {}


def _identified(version: dict[str, Any]) -> bool:
    """A version object that names a Civitai version (not just locally edited trigger words)."""
    return identifier(version.get("id")) is not None or bool(dicts(version.get("files")))


def _decided_match(matches: list[VersionMatch]) -> VersionMatch | None:
    """The match of the first source (column order) that chose a version, else the model object's ``none``."""
    return next((match for match in matches if match.version is not None), matches[-1] if matches else None)


def _text_fields(sources: _Sources, header_fields: HeaderFields, model_path: Path) -> dict[str, Any]:
    lm, lmc, info, model, a1111, header = (
        sources.lora_manager,
        sources.lm_civitai,
        sources.info,
        sources.model,
        sources.a1111,
        sources.header,
    )
    return {
        "name": first(
            text(lm.get("model_name"), 255),
            text(dig(info, "model", "name"), 255),
            text(model.get("name"), 255),
            text(header.get("modelspec.title"), 255),
            text(header_fields.output_name, 255),
            text(file_stem(model_path), 255),
        ),
        "version": first(
            text(lmc.get("name"), 100), text(info.get("name"), 100), text(sources.version.get("name"), 100)
        ),
        "description": first(
            text(lm.get("modelDescription"), 50_000),
            text(info.get("description"), 50_000),
            text(model.get("description"), 50_000),
            text(a1111.get("description"), 50_000),
            text(header.get("modelspec.description"), 50_000),
        ),
        "author_username": first(
            *(text(dig(source, "creator", "username"), 150) for source in (lmc, info, model)),
            text(header.get("modelspec.author"), 150),
        ),
        "activation_text": text(a1111.get("activation text"), 5000),
        "negative_text": text(a1111.get("negative text"), 5000),
        "notes": first(text(lm.get("notes"), 10_000), text(a1111.get("notes"), 10_000)),
    }


def _list_fields(sources: _Sources, header_fields: HeaderFields) -> dict[str, Any]:
    return {
        "tags": first(
            tags(sources.lora_manager.get("tags")),
            tags(dig(sources.info, "model", "tags")),
            tags(sources.model.get("tags")),
            comma_tags(sources.header.get("modelspec.tags")),
        ),
        "trained_words": first(
            phrases(sources.lm_civitai.get("trainedWords")),
            phrases(sources.info.get("trainedWords")),
            phrases(sources.version.get("trainedWords")),
            phrases(header_fields.trigger_candidates),
        ),
    }


def _number_fields(sources: _Sources) -> dict[str, Any]:
    lm, lmc, info, model, a1111 = sources.lora_manager, sources.lm_civitai, sources.info, sources.model, sources.a1111
    preferred = weight(a1111.get("preferred weight"))
    return {
        "preferred_weight": first(
            preferred if preferred != 0 else None,
            weight(a1111.get("weight")),
            weight(a1111.get("default_weight")),
            _usage_tips_strength(lm.get("usage_tips")),
        ),
        "nsfw_level": first(
            nsfw(lmc.get("nsfwLevel")),
            nsfw(lm.get("preview_nsfw_level")),
            nsfw(info.get("nsfwLevel")),
            nsfw(sources.version.get("nsfwLevel")),
            nsfw(model.get("nsfwLevel")),
        ),
        "published_at": first(
            timestamp(lmc.get("publishedAt")),
            timestamp(info.get("publishedAt")),
            timestamp(info.get("createdAt")),
            timestamp(sources.version.get("publishedAt")),
            timestamp(sources.header.get("modelspec.date")),
        ),
        "stats": first(*(_stats(source.get("stats")) for source in (lmc, info, model))),
        "supports_generation": first(*(flag(source.get("supportsGeneration")) for source in (info, model))),
    }


def _usage_tips_strength(value: Any) -> float | None:
    """Lora-Manager ``usage_tips`` is a JSON string such as ``'{"strength": 0.8}'``."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return None
    return weight(value.get("strength")) if isinstance(value, dict) else None


def _stats(value: Any) -> dict[str, Any] | None:
    stats = json_object(value)
    if not stats or len(json.dumps(stats, separators=(",", ":"))) > EXTRA_MAX_BYTES:
        return None
    return stats


def _base_fields(sources: _Sources, model_path: Path) -> dict[str, Any]:
    lm_label = text(sources.lora_manager.get("base_model"), 64)
    label = first(
        lm_label if (lm_label or "").lower() != "unknown" else None,
        text(sources.info.get("baseModel"), 64),
        text(sources.version.get("baseModel"), 64),
    )
    sd_version = text(sources.a1111.get("sd version"), 64)
    sd_version = sd_version if (sd_version or "").lower() != "unknown" else None
    base = detect_base_model(
        metadata=sources.header, file_name=model_path.name, ecosystem_label=label, a1111_sd_version=sd_version
    )
    return {
        "base_model": base.label,
        "base_family": base.family if base.family != "unknown" else None,
        "sd_version": sd_version or base.label,
    }


def _civitai_fields(sources: _Sources, decided: VersionMatch | None) -> dict[str, Any]:
    lmc, info = sources.lm_civitai, sources.info
    return {
        "civitai_version_id": first(*(identifier(source.get("id")) for source in (lmc, info, sources.version))),
        "civitai_model_id": first(
            identifier(lmc.get("modelId")), identifier(info.get("modelId")), identifier(sources.model.get("id"))
        ),
        "civitai_match": decided.match if decided else CivitaiMatch.NONE.value,
        **primary_file_values(decided.primary_file if decided else None),
    }


def _file_fields(sidecars: SidecarSet, sources: _Sources, model_path: Path) -> dict[str, Any]:
    json_file = next((sidecar for kind in JSON_FILE_ORDER if (sidecar := sidecars.first(kind))), None)
    preview = _lora_manager_preview(sources.lora_manager.get("preview_url"), model_path) or sidecars.preview
    return {
        "preview_path": str(preview) if preview else None,
        "json_file_path": str(json_file.path) if json_file else None,
        "json_file_mtime": json_file.mtime if json_file else None,
        "json_file_size": json_file.size if json_file else None,
        "sidecars": sidecars.listing(),
    }


def _lora_manager_preview(value: Any, model_path: Path) -> Path | None:
    """Lora-Manager's ``preview_url`` (a local path), used only when it lies inside a LoRA root and exists."""
    if not isinstance(value, str) or not value.strip() or "\x00" in value or len(value) > 1024:
        return None
    path = Path(value.strip())
    path = path if path.is_absolute() else model_path.parent / path
    try:
        usable = root_of(path) is not None and path.is_file()
    except (OSError, ValueError):
        usable = False
    return Path(os.path.normpath(path)) if usable else None


def _extra(sidecars: SidecarSet) -> tuple[dict[str, Any] | None, list[str]]:
    extra: dict[str, Any] = {}
    for sidecar in sidecars.sidecars:
        unmapped = {key: value for key, value in sidecar.data.items() if key not in MAPPED_KEYS[sidecar.kind]}
        if unmapped:
            extra[sidecar.kind] = json_object(unmapped)
    if not extra:
        return None, []
    dropped = _fit_extra(extra)
    warnings = [EXTRA_TOO_LARGE_WARNING.format(keys=", ".join(dropped))] if dropped else []
    return (extra or None), warnings


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def _fit_extra(extra: dict[str, dict[str, Any]]) -> list[str]:
    """Drop the largest unmapped keys (a Civitai ``images`` list, typically) until ``extra`` fits; return them."""
    sizes = sorted(
        ((_size(value), kind, key) for kind, group in extra.items() for key, value in group.items()), reverse=True
    )
    dropped: list[str] = []
    for _size_of_key, kind, key in sizes:
        if _size(extra) <= EXTRA_MAX_BYTES:
            break
        del extra[kind][key]
        dropped.append(f"{kind}.{key}")
    for kind in [kind for kind, group in extra.items() if not group]:
        del extra[kind]
    return dropped


def _sha256_warnings(lora_manager: dict[str, Any], sha256: str | None) -> list[str]:
    recorded = lora_manager.get("sha256")
    if not sha256 or not isinstance(recorded, str) or not recorded.strip():
        return []
    return [] if recorded.strip().lower() == sha256.lower() else [SHA256_MISMATCH_WARNING]


def apply_imported(adapter: Adapter, imported: ImportedFields, *, creating: bool) -> set[str]:
    """Apply SPEC 6.6.7 to an unsaved adapter: curatable fields only when not in adapter.locked_fields (on create:
    always) and non-empty; author_username/published_at only non-empty; import-owned always; user-owned (active,
    weight, ordinal, locked_fields) only when creating (weight = preferred_weight within -5..5, else 1.0). Returns
    the names of the fields whose value changed. Does not save and does not resolve name collisions (the engine
    does)."""
    locked = set() if creating else set(adapter.locked_fields or [])
    updates = {key: value for key, value in imported.values.items() if _applies(key, value, locked)}
    if creating:
        updates.update(_user_owned_on_create(imported.values.get("preferred_weight")))
    changed = set()
    for key, value in updates.items():
        if getattr(adapter, key) != value:
            setattr(adapter, key, value)
            changed.add(key)
    return changed


def _applies(key: str, value: Any, locked: set[str]) -> bool:
    if key in USER_OWNED_FIELDS:
        return False
    if key in CURATABLE_FIELDS:
        return key not in locked and not is_empty(value)
    return key not in NON_EMPTY_ONLY_FIELDS or not is_empty(value)


def _user_owned_on_create(preferred_weight: Any) -> dict[str, Any]:
    usable = isinstance(preferred_weight, float) and WEIGHT_MIN <= preferred_weight <= WEIGHT_MAX
    return {"active": False, "weight": preferred_weight if usable else 1.0, "ordinal": None, "locked_fields": []}
