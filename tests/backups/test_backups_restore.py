"""Backup → change → restore with the real archive writer, validator and apply (SPEC 6.10.3, 6.10.4): merge brings
deleted adapters and files back, replace restores curation, dry-run writes nothing, a tampered backup writes
nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.models import Adapter
from backups.services.restore import backup_restore_start, restore_run
from loraforge.models import BackgroundJob
from tests.backups.apply_archives import folders, listing, table_rows
from tests.backups.helpers import completed_backup, stored_file, tamper
from tests.factories import AdapterFactory
from tests.lora_files import write_safetensors

pytestmark = pytest.mark.django_db
__all__ = ["folders"]

VOLATILE = {"updated_at", "last_ingested_at"}


def _library(loras: Path, count: int = 3) -> list[Adapter]:
    adapters: list[Adapter] = []
    for index in range(count):
        path = write_safetensors(loras / f"style_{index}.safetensors", seed=index)
        adapters.append(
            AdapterFactory.create(
                file_path=str(path), primary_file_local_path=str(path), description=f"Style {index}", notes="kept"
            )
        )
    return adapters


def _rows() -> dict[str, dict[str, Any]]:
    return {
        str(row["id"]): {key: value for key, value in row.items() if key not in VOLATILE}
        for row in Adapter.objects.order_by("pk").values()
    }


def _restore(backup: Any, mode: str, sent_tasks: list) -> BackgroundJob:
    job = backup_restore_start(backup, mode=mode, created_via="api")
    restore_run(str(job.pk))
    job.refresh_from_db()
    return job


def test_merge_brings_back_a_deleted_adapter_and_its_file(folders, sent_tasks, backup_dir):
    adapters = _library(folders["loras"])
    before, file_bytes = _rows(), Path(adapters[0].file_path).read_bytes()
    backup = completed_backup("full")
    Path(adapters[0].file_path).unlink()
    adapters[0].delete()
    Adapter.objects.filter(pk=adapters[1].pk).update(description="")

    job = _restore(backup, "merge", sent_tasks)

    assert job.status == "succeeded", job.error
    assert (job.result["status"], job.result["created"], job.result["updated"]) == ("imported", 1, 1)
    assert job.message.startswith(f"Restored {backup.file_name} (merge): 1 created, 1 updated, ")
    assert _rows() == before
    assert Path(adapters[0].file_path).read_bytes() == file_bytes


def test_replace_restores_the_curation_of_the_backup(folders, sent_tasks, backup_dir):
    adapters = _library(folders["loras"], count=2)
    before = _rows()
    backup = completed_backup("metadata_only")
    Adapter.objects.filter(pk=adapters[0].pk).update(description="rewritten", notes="changed")

    job = _restore(backup, "replace", sent_tasks)

    assert job.status == "succeeded", job.error
    assert _rows() == before


def test_a_dry_run_restore_writes_nothing(folders, sent_tasks, backup_dir):
    adapters = _library(folders["loras"])
    backup = completed_backup("full")
    adapters[0].delete()
    Path(adapters[0].file_path).unlink()
    rows = {label: rows for label, rows in table_rows().items() if label != "loraforge.BackgroundJob"}
    files = listing(folders["loras"], folders["media"], folders["tmp"])

    job = _restore(backup, "dry-run", sent_tasks)

    assert job.status == "succeeded", job.error
    assert job.result["status"] == "validated"
    assert [item["status"] for item in job.result["adapters"]].count("would_create") == 1
    assert {label: rows for label, rows in table_rows().items() if label != "loraforge.BackgroundJob"} == rows
    assert listing(folders["loras"], folders["media"], folders["tmp"]) == files


def test_a_tampered_backup_restores_nothing(folders, sent_tasks, backup_dir):
    adapters = _library(folders["loras"])
    backup = completed_backup("full")
    adapters[0].delete()
    Path(adapters[0].file_path).unlink()
    tamper(stored_file(backup))
    rows = {label: rows for label, rows in table_rows().items() if label != "loraforge.BackgroundJob"}
    files = listing(folders["loras"], folders["media"], folders["tmp"])

    job = _restore(backup, "merge", sent_tasks)

    assert job.status == "failed"
    assert str(job.error).startswith("Backup file does not match its recorded SHA-256")
    assert {label: rows for label, rows in table_rows().items() if label != "loraforge.BackgroundJob"} == rows
    assert listing(folders["loras"], folders["media"], folders["tmp"]) == files


def test_a_backup_with_more_members_than_the_import_limit_restores_and_verifies(
    folders, sent_tasks, backup_dir, settings
):
    """A library larger than ``LORAFORGE_IMPORT_MAX_MEMBERS`` (100,000 adapters make more members than that): its own
    untouched backup is bounded by the members the backup counted; the same file given as a path is refused."""
    from backups.services.restore import backup_verify, file_restore_start

    adapters = _library(folders["loras"], count=3)
    before = _rows()
    backup = completed_backup("full")
    settings.LORAFORGE_IMPORT_MAX_MEMBERS = 3  # the archive holds 3 records, 3 files and its JSON members
    adapters[0].delete()

    assert backup_verify(backup) == []
    job = _restore(backup, "merge", sent_tasks)
    assert job.status == "succeeded", job.error
    assert _rows() == before

    by_path = file_restore_start(stored_file(backup), mode="dry-run", created_via="cli")
    restore_run(str(by_path.pk))
    by_path.refresh_from_db()
    assert (by_path.status, by_path.error) == ("failed", "Archive has too many members")
