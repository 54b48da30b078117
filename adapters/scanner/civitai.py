"""Civitai version matching by hash (SPEC 6.6.4).

A Civitai model object lists every version of a model; the version that describes *this* file is the one
whose file entry carries its hash (fix: the original always took ``modelVersions[0]``, the newest one).
Single-version objects (``.civitai.info``, Lora-Manager's ``civitai``) are checked against the file too.
Hash comparisons ignore case: Civitai writes upper-case hex.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from adapters.models import CivitaiMatch

NO_VERSION_WARNING = "No Civitai version matches this file"
UNVERIFIED_WARNING = "Civitai metadata hash does not match the file"


@dataclass(frozen=True)
class VersionMatch:
    version: dict[str, Any] | None  # the chosen model-version object (None: no version-level field applies)
    match: str  # a CivitaiMatch value
    primary_file: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()


def match_model_version(
    model: dict[str, Any], *, sha256: str | None, autov2: str | None, autov3: str | None, file_name: str
) -> VersionMatch:
    """Choose the version of a Civitai model object (``modelVersions``) that describes the local file."""
    versions = dicts(model.get("modelVersions"))
    for kind, key, value in _local_hashes(sha256, autov2, autov3):
        for version in versions:
            found = _file_with_hash(version, key, value)
            if found is not None:
                return VersionMatch(version, kind, found)
    for version in versions:
        found = _file_named(version, file_name)
        if found is not None:
            return VersionMatch(version, CivitaiMatch.FILENAME.value, found)
    if len(versions) == 1:
        return VersionMatch(versions[0], CivitaiMatch.SINGLE_VERSION.value, primary_file(versions[0]))
    return VersionMatch(None, CivitaiMatch.NONE.value, None, (NO_VERSION_WARNING,))


def match_single_version(
    version: dict[str, Any], *, sha256: str | None, autov2: str | None, autov3: str | None, file_name: str
) -> VersionMatch:
    """Check a single version object against the file; it is used even when its hashes do not match."""
    for kind, key, value in _local_hashes(sha256, autov2, autov3):
        found = _file_with_hash(version, key, value)
        if found is not None:
            return VersionMatch(version, kind, found)
    if _carries_comparable_hash(version, sha256, autov2, autov3):
        return VersionMatch(version, CivitaiMatch.UNVERIFIED.value, primary_file(version), (UNVERIFIED_WARNING,))
    found = _file_named(version, file_name)
    if found is not None:
        return VersionMatch(version, CivitaiMatch.FILENAME.value, found)
    return VersionMatch(version, CivitaiMatch.SINGLE_VERSION.value, primary_file(version))


def primary_file(version: dict[str, Any]) -> dict[str, Any] | None:
    """Without a matching file: the entry marked ``primary: true``, else the largest ``sizeKB``."""
    files = dicts(version.get("files"))
    marked = next((entry for entry in files if entry.get("primary") is True), None)
    if marked is not None or not files:
        return marked
    return max(files, key=lambda entry: _number(entry.get("sizeKB")))


def file_hash(entry: dict[str, Any], key: str) -> str | None:
    """A hash of a file entry, lower-case; ``key`` (``SHA256``, ``AutoV2``, …) is matched case-insensitively."""
    hashes = entry.get("hashes")
    if not isinstance(hashes, dict):
        return None
    for name, value in hashes.items():
        if isinstance(name, str) and name.lower() == key.lower() and isinstance(value, str) and value.strip():
            return value.strip().lower()
    return None


def dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON list; anything else in it (or a value that is not a list) is ignored."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _local_hashes(sha256: str | None, autov2: str | None, autov3: str | None) -> Iterator[tuple[str, str, str]]:
    for kind, key, value in (
        (CivitaiMatch.SHA256.value, "SHA256", sha256),
        (CivitaiMatch.AUTOV2.value, "AutoV2", autov2),
        (CivitaiMatch.AUTOV3.value, "AutoV3", autov3),
    ):
        if value:
            yield kind, key, value.lower()


def _file_with_hash(version: dict[str, Any], key: str, value: str) -> dict[str, Any] | None:
    return next((entry for entry in dicts(version.get("files")) if file_hash(entry, key) == value), None)


def _file_named(version: dict[str, Any], file_name: str) -> dict[str, Any] | None:
    wanted = file_name.casefold()
    return next(
        (
            entry
            for entry in dicts(version.get("files"))
            if isinstance(entry.get("name"), str) and entry["name"].casefold() == wanted
        ),
        None,
    )


def _carries_comparable_hash(
    version: dict[str, Any], sha256: str | None, autov2: str | None, autov3: str | None
) -> bool:
    """True when some file entry has a hash of a kind the local file has too (so a mismatch is a real one)."""
    keys = [key for _kind, key, _value in _local_hashes(sha256, autov2, autov3)]
    return any(file_hash(entry, key) for entry in dicts(version.get("files")) for key in keys)


def _number(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return float(value)
    return float("-inf")
