"""Archives for the apply tests, built by hand (``tests/backups/archives.py``) from ``row_record`` of real rows,
and the snapshots the tests compare (every table's rows, every file under the test's folders)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps

from adapters.models import Adapter
from backups.archive.apply import archive_apply
from backups.archive.format import (
    MemberEntry,
    adapter_file_member,
    adapter_record_member,
    preview_member,
    sidecar_member,
)
from backups.archive.reader import ValidatedArchive
from backups.archive.records import ADAPTER_DERIVED, row_record
from tests.backups.archives import make_archive, manifest_for

MEMBER_KEYS = ("file_member", "sidecar_members", "preview_member")


def adapter_members(
    adapter: Adapter,
    *,
    file: bytes | None = None,
    sidecars: Mapping[str, bytes] | None = None,
    preview: tuple[str, bytes] | None = None,
    **changes: Any,
) -> dict[str, bytes]:
    """The members of one adapter as an export writes them (``changes`` edit the record)."""
    import json

    record = row_record(adapter, exclude=ADAPTER_DERIVED)
    for stamp in ("created_at", "updated_at"):  # an unsaved (built) adapter has none yet
        record[stamp] = record[stamp] or "2024-01-01T00:00:00+00:00"
    record.update(changes)
    members: dict[str, bytes] = {}
    name = Path(record["file_path"]).name
    record["file_member"] = adapter_file_member(adapter.pk, name) if file is not None else None
    record["sidecar_members"] = [
        {"member": sidecar_member(adapter.pk, sidecar), "name": sidecar} for sidecar in (sidecars or {})
    ]
    record["preview_member"] = preview_member(adapter.pk, preview[0]) if preview else None
    record.update({key: changes[key] for key in MEMBER_KEYS if key in changes})
    members[adapter_record_member(adapter.pk)] = json.dumps(record).encode()
    if file is not None:
        members[adapter_file_member(adapter.pk, name)] = file
    for sidecar, data in (sidecars or {}).items():
        members[sidecar_member(adapter.pk, sidecar)] = data
    if preview:
        members[record["preview_member"]] = preview[1]
    return members


def validated(path: Path, members: Mapping[str, bytes]) -> ValidatedArchive:
    """The archive as validation hands it over (steps 1-8 hold by construction)."""
    make_archive(path, members)
    manifest = manifest_for(members)
    entries = {
        name: MemberEntry(path=name, size=len(data), sha256=hashlib.sha256(data).hexdigest())
        for name, data in members.items()
    }
    return ValidatedArchive(path=path, manifest=manifest, members=entries)


def apply(tmp_path: Path, members: Mapping[str, bytes], mode: str = "merge", name: str = "a.zip") -> dict[str, Any]:
    return archive_apply(validated(tmp_path / name, members), mode=mode, job_id="test")


def merged(*parts: Mapping[str, bytes]) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    for part in parts:
        members.update(part)
    return members


def table_rows() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the project's apps (values in primary-key order)."""
    rows = {}
    for model in apps.get_models():
        if model._meta.app_label in ("contenttypes", "sessions", "admin", "auth"):
            continue
        rows[model._meta.label] = sorted(
            (tuple(map(repr, row)) for row in model._base_manager.order_by().values_list()), key=repr
        )
    return rows


def listing(*roots: Path) -> list[tuple[str, int]]:
    return sorted(
        (str(path), path.stat().st_size)
        for root in roots
        if root.exists()
        for path in root.rglob("*")
        if path.is_file()
    )


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dump(records: Iterable[Any]) -> bytes:
    from tests.backups.archives import jsonl

    return jsonl(records)


@pytest.fixture
def folders(tmp_path: Path, settings: Any, lora_dir: Path) -> dict[str, Path]:
    data = tmp_path / "data"
    settings.LORAFORGE_TMP_DIR = data / "tmp"
    settings.MEDIA_ROOT = data / "media"
    settings.LORAFORGE_IMPORT_SUBDIR = "imported"
    return {"loras": lora_dir, "data": data, "media": data / "media", "tmp": data / "tmp"}
