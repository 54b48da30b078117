"""Archives built by hand for the tests: a valid ``loraforge-archive`` from any members, or a broken one.

Built with ``zipfile`` directly (not with the product's writer), so that a test of the reader or of ``apply`` does
not depend on the writer it may be checking."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from backups.archive.format import COUNT_KEYS, FORMAT, FORMAT_VERSION, MANIFEST

# The smallest valid archive's members, beside which the broken ones put their one bad member.
GOOD = {"adapters/a/adapter.json": b'{"name": "a"}', "config/backends.json": b"[]"}


def jsonl(records: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


def manifest_for(members: Mapping[str, bytes], **overrides: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": "export",
        "backup_type": None,
        "created_at": "2025-03-01T12:00:00+00:00",
        "app_version": "1.0.0",
        "options": {},
        "counts": dict.fromkeys(COUNT_KEYS, 0),
        "total_bytes": sum(len(data) for data in members.values()),
        "members": [
            {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in members.items()
        ],
    }
    manifest.update(overrides)
    return manifest


def make_archive(
    path: Path,
    members: Mapping[str, bytes],
    *,
    manifest: Mapping[str, Any] | bytes | None = None,
    with_manifest: bool = True,
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    """A ZIP with ``members`` and (unless ``with_manifest`` is False) a manifest listing them correctly, or the
    given ``manifest`` (a dict, or raw bytes for a broken one)."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if with_manifest:
            body = manifest if isinstance(manifest, bytes) else json.dumps(manifest or manifest_for(members)).encode()
            archive.writestr(MANIFEST, body)
    return path


def with_member(tmp_path: Path, name: str, data: bytes = b"x", **info: object) -> Path:
    """A valid archive (``GOOD``) plus one extra member listed in the manifest, its ``ZipInfo`` given ``info``
    (``external_attr`` for a symlink, ``compress_type``...)."""
    members = {**GOOD, name: data}
    path = tmp_path / "archive.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for member, content in members.items():
            entry = zipfile.ZipInfo(member)
            entry.compress_type = zipfile.ZIP_DEFLATED
            for key, value in (info if member == name else {}).items():
                setattr(entry, key, value)
            archive.writestr(entry, content)
        archive.writestr(MANIFEST, json.dumps(manifest_for(members)))
    return path
