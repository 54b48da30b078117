"""Round trips through the whole product (issue 13): ``POST /export`` of every part, then ``POST /import`` into an
emptied database and emptied folders, gives back identical rows and files; a full backup, then deletions and edits of
adapters, results, preferences and sessions, then a restore (merge, then replace) gives back the backup's rows.

Only volatile columns are left out of the comparison: an imported adapter's ``updated_at``/``last_ingested_at`` (the
time of the import, SPEC 6.10.3) and ``primary_file_local_path`` (set by an import to where the file was put, SPEC
3.2; checked on its own), auto-increment ids of link rows, a backend's password (never archived) and its
health/lease columns (this host's observations)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from django.db import models

from adapters.models import Adapter
from analytics.models import AdapterDayRollup, AdapterHourRollup, JobErrorHourRollup, JobHourRollup, ResourceSample
from analytics.rollups import rollups_rebuild
from backups.services.restore import backup_restore_start, restore_run
from deliveries.models import DeliveryJob, DeliveryJobAdapter
from generation.models import GenerationBackend, GenerationResult
from recommendations.encoder import model_name
from recommendations.models import AdapterEmbedding, RecommendationFeedback, RecommendationSession, UserPreference
from tests.backups.helpers import completed_backup
from tests.backups.library import Library, make_library, read_archive, verify_members

pytestmark = pytest.mark.django_db(transaction=True)

EVERY_PART = {
    "loras": True, "lora_files": True, "lora_metadata": True, "lora_embeddings": True, "generations": True,
    "user_data": True, "system_config": True, "analytics": True,
}  # fmt: skip
# (model, columns left out of the comparison)
COMPARED: list[tuple[type[models.Model], set[str]]] = [
    (Adapter, {"updated_at", "last_ingested_at", "primary_file_local_path"}),  # the last: set by an import (SPEC 3.2)
    (AdapterEmbedding, set()),
    (DeliveryJob, set()),
    (DeliveryJobAdapter, {"id"}),
    (GenerationResult, set()),
    (RecommendationSession, set()),
    (RecommendationFeedback, set()),
    (UserPreference, {"updated_at"}),  # auto_now: the time of a replace
    (ResourceSample, {"id"}),
    (GenerationBackend, {"id", "password", "healthy", "last_checked_at", "last_error", "version_info", "lease_job",
                         "lease_expires_at", "last_used_at", "created_at", "updated_at", "is_default"}),
]  # fmt: skip
ROLLUPS: list[type[models.Model]] = [JobHourRollup, JobErrorHourRollup, AdapterHourRollup, AdapterDayRollup]


def snapshot() -> dict[str, list[dict[str, Any]]]:
    tables = {}
    for model, volatile in COMPARED:
        rows = [
            {key: value for key, value in row.items() if key not in volatile}
            for row in model._base_manager.order_by().values()
        ]
        tables[model._meta.label] = sorted(rows, key=repr)
    return tables


def differences(before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Readable differences between two snapshots: the table, the row's id and every column that changed."""
    found = []
    for label, rows in before.items():
        others = {str(row.get("id", index)): row for index, row in enumerate(after.get(label, []))}
        for index, row in enumerate(rows):
            other = others.get(str(row.get("id", index)))
            if other is None:
                found.append(f"{label} {row.get('id', index)}: missing")
                continue
            found.extend(
                f"{label} {row.get('id', index)}.{key}: {row[key]!r} != {other.get(key)!r}"
                for key in row
                if row[key] != other.get(key)
            )
        if len(after.get(label, [])) != len(rows):
            found.append(f"{label}: {len(rows)} rows != {len(after.get(label, []))}")
    return found


def rollups() -> dict[str, list[tuple[Any, ...]]]:
    """Every rollup row by its key and counts (not its auto-increment id); rows a removal left at zero are no data."""
    tables = {}
    for model in ROLLUPS:
        columns = [field.attname for field in model._meta.concrete_fields if field.attname != "id"]
        counted = [name for name in columns if name in ("total", "count")]
        rows = model._base_manager.values_list(*columns)
        tables[model._meta.label] = sorted(
            (row for row in rows if any(row[columns.index(name)] for name in counted)), key=repr
        )
    return tables


def files(*roots: Path) -> dict[str, str]:
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for root in roots
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def empty_everything(*roots: Path) -> None:
    for model, _ in reversed(COMPARED):
        model._base_manager.all().delete()
    for root in roots:
        for path in sorted(root.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()


@pytest.fixture
def full_library(lora_dir: Path, tmp_path: Path, settings) -> Library:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LORAFORGE_TMP_DIR = tmp_path / "data" / "tmp"
    settings.LORAFORGE_BACKUP_DIR = tmp_path / "data" / "backups"
    library = make_library(lora_dir, settings.MEDIA_ROOT)
    AdapterEmbedding.objects.update(model_name=model_name())  # embeddings of another model are skipped on import
    return library


def test_export_then_import_into_an_empty_database_gives_identical_rows_and_files(
    api, full_library: Library, lora_dir: Path, settings
):
    media = Path(settings.MEDIA_ROOT)
    rows, stored, exact = snapshot(), files(lora_dir, media), rollups()
    assert all(rows.values()), "every compared table holds rows before the export"
    response = api.post("/api/v1/export", EVERY_PART, format="json")
    data = b"".join(response.streaming_content)
    archive, manifest = read_archive(data)
    verify_members(archive, manifest)

    empty_everything(lora_dir, media)
    assert not any(snapshot().values())
    assert not files(lora_dir, media)
    upload = settings.LORAFORGE_TMP_DIR.parent / "library.zip"
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_bytes(data)
    with upload.open("rb") as handle:
        answer = api.post("/api/v1/import", {"files": [handle]}, format="multipart")

    assert answer.status_code == 200, answer.content
    result = answer.json()["results"][0]
    assert (answer.json()["success"], result["status"], result["created"]) == (True, "imported", 3), result
    assert result["warnings"] == []
    assert differences(rows, snapshot()) == []
    assert files(lora_dir, media) == stored
    assert all(adapter.primary_file_local_path == adapter.file_path for adapter in Adapter.objects.all())
    assert rollups() == exact
    rollups_rebuild()
    assert rollups() == exact, "the rollups the triggers kept during the import equal a rebuild"


def _restore(backup: Any, mode: str) -> dict[str, Any]:
    job = backup_restore_start(backup, mode=mode, created_via="api")
    restore_run(str(job.pk))
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.result is not None
    return dict(job.result)


def test_backup_then_deletions_then_merge_restore_gives_the_backup_back(
    full_library: Library, lora_dir: Path, settings, sent_tasks
):
    media = Path(settings.MEDIA_ROOT)
    rows, stored = snapshot(), files(lora_dir, media)
    backup = completed_backup("full")
    gone = full_library.adapters[2]
    Path(gone.file_path).unlink()
    gone.delete()
    result = full_library.results[2]
    (media / result.file).unlink()
    result.delete()
    UserPreference.objects.all().delete()
    RecommendationSession.objects.all().delete()  # and its feedback
    Adapter.objects.filter(pk=full_library.adapters[1].pk).update(tags=[], header_metadata=None)

    report = _restore(backup, "merge")

    assert (report["created"], report["updated"]) == (1, 1), report
    assert differences(rows, snapshot()) == []
    assert files(lora_dir, media) == stored


def test_backup_then_edits_then_replace_restore_gives_the_backup_back(
    full_library: Library, lora_dir: Path, settings, sent_tasks
):
    rows = snapshot()
    backup = completed_backup("metadata_only")
    first = full_library.adapters[0]
    Adapter.objects.filter(pk=first.pk).update(description="rewritten", weight=0.3, locked_fields=[], active=True)
    UserPreference.objects.update(confidence=0.99)
    GenerationResult.objects.filter(pk=full_library.results[0].pk).update(rating=1, is_favorite=True)

    merged = _restore(backup, "merge")
    assert snapshot() != rows, "merge never overwrites what the user changed"
    assert merged["skipped"] + merged["updated"] == 3

    _restore(backup, "replace")
    assert differences(rows, snapshot()) == []
