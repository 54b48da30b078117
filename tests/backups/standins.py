"""Stand-ins for the archive writer, validator and importer, used while those modules are not on this branch.

``install()`` puts them in ``sys.modules`` under the real names only where the real module is missing, so once the
real ``backups.archive.build`` (``validate``, ``services.imports``) exists, every test runs against it. They
follow the interfaces: ``archive_write(target, options, *, kind, backup_type, progress) -> Manifest``,
``archive_validate(path, *, progress) -> ValidatedArchive`` (raises ``ArchiveError``),
``archive_import_file(path, *, display_name, mode, job, progress) -> dict``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
import types
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from backups.archive.format import (
    CHECKSUM_MISMATCH,
    MANIFEST,
    MANIFEST_MISSING,
    NOT_A_ZIP,
    ArchiveError,
    ArchiveOptions,
    Manifest,
    MemberEntry,
    adapter_record_member,
)
from backups.archive.progress import ArchiveCancelled, ArchiveProgress, NoProgress
from backups.archive.reader import ValidatedArchive

REAL_MODULES = ("backups.archive.build", "backups.archive.validate", "backups.services.imports")


def archive_write(
    target: BinaryIO,
    options: ArchiveOptions,
    *,
    kind: str,
    backup_type: str | None = None,
    progress: ArchiveProgress | None = None,
) -> Manifest:
    from adapters.models import Adapter

    progress = progress or NoProgress()
    members = {
        adapter_record_member(adapter.pk): json.dumps({"id": str(adapter.pk), "name": adapter.name}).encode()
        for adapter in Adapter.objects.order_by("pk")
    }
    manifest = Manifest(
        kind=kind, backup_type=backup_type, created_at="2025-03-01T12:00:00Z", app_version="1.0.0",
        options=options.manifest_options(),
    )  # fmt: skip
    manifest.counts["adapters"] = len(members)
    progress.planned(sum(len(data) for data in members.values()))
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            if progress.cancelled():
                raise ArchiveCancelled
            archive.writestr(name, data)
            manifest.members.append(MemberEntry(path=name, size=len(data), sha256=hashlib.sha256(data).hexdigest()))
            progress.advance(len(data), name)
        archive.writestr(MANIFEST, json.dumps(manifest.to_dict()))
    return manifest


def archive_validate(path: Path, *, progress: ArchiveProgress | None = None) -> ValidatedArchive:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise ArchiveError(NOT_A_ZIP) from None
    with archive:
        if MANIFEST not in archive.namelist():
            raise ArchiveError(MANIFEST_MISSING)
        manifest = json.loads(archive.read(MANIFEST))
        members = {}
        for entry in manifest["members"]:
            try:
                data = archive.read(entry["path"])
            except (zipfile.BadZipFile, zlib.error, OSError):
                data = b""
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise ArchiveError(CHECKSUM_MISMATCH.format(name=entry["path"]))
            members[entry["path"]] = MemberEntry(**entry)
    return ValidatedArchive(path=Path(path), manifest=manifest, members=members)


def archive_import_file(
    path: Path, *, display_name: str, mode: str, job: Any = None, progress: ArchiveProgress | None = None
) -> dict[str, Any]:
    """Validates, then reports every adapter record as ``skipped`` (writes nothing)."""
    try:
        archive = archive_validate(path)
    except ArchiveError as exc:
        return {"file": display_name, "status": "error", "detail": str(exc), "errors": [str(exc)]}
    adapters = [name for name in archive.members if name.endswith("/adapter.json")]
    return {
        "file": display_name, "status": "validated" if mode == "dry-run" else "imported", "created": 0,
        "updated": 0, "skipped": len(adapters), "adapters": [],
        "parts": {"embeddings": 0, "generation_jobs": 0, "generation_results": 0}, "warnings": [], "errors": [],
    }  # fmt: skip


def _missing(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return True
        raise
    return False


def install() -> list[str]:
    """Register the stand-in of each missing module; returns the names it stood in for."""
    replaced = []
    functions: dict[str, dict[str, Any]] = {
        "backups.archive.build": {"archive_write": archive_write},
        "backups.archive.validate": {"archive_validate": archive_validate},
        "backups.services.imports": {"archive_import_file": archive_import_file},
    }
    for name in REAL_MODULES:
        if _missing(name):
            module = types.ModuleType(name, "test stand-in")
            module.__dict__.update(functions[name])
            sys.modules[name] = module
            replaced.append(name)
    return replaced
