"""The backup lifecycle in-process (SPEC 3.7, 5.11, 6.10.4): create and queue, write, fail, cancel, recover,
retention, delete, verify, restore."""

from __future__ import annotations

import json
import re
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from backups.archive.format import MANIFEST, ArchiveError
from backups.archive.progress import ArchiveCancelled
from backups.models import Backup
from backups.services import backups as service
from backups.services import restore
from loraforge.errors import Conflict
from loraforge.jobs.background import job_cancel
from loraforge.jobs.enqueue import QUEUE_UNAVAILABLE, QueueUnavailable
from loraforge.jobs.recovery import WORKER_LOST, jobs_recover
from loraforge.models import BackgroundJob
from tests.backups.helpers import (
    completed_backup,
    first_member_data_offset,
    leftovers,
    sha256_of,
    stored_file,
    tamper,
)
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db

NAME = re.compile(r"^backup_\d{8}_\d{6}_[0-9a-f]{6}\.zip$")


def _writer(monkeypatch: pytest.MonkeyPatch, write: Any) -> None:
    monkeypatch.setattr(service, "archive_writer", lambda: write)


# --- create ------------------------------------------------------------------------------------------------


def test_create_makes_a_pending_backup_and_queues_its_task_on_commit(
    backup_dir, sent_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        backup = service.backup_create(backup_type="metadata_only", trigger="api", created_via="api")
    job = BackgroundJob.objects.get(pk=backup.job_id)
    assert (backup.status, backup.backup_type, backup.trigger) == ("pending", "metadata_only", "api")
    assert (job.kind, job.status, job.created_via) == ("backup", "pending", "api")
    assert sent_tasks == [("backups.run_backup", [str(job.pk)], {})]
    assert job.celery_task_id == "task-1"


@pytest.mark.django_db(transaction=True)  # the enqueue runs when the real commit happens
def test_a_refused_enqueue_fails_the_backup_and_its_job(backup_dir, monkeypatch):
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr("loraforge.celery.app.send_task", refuse)
    with pytest.raises(QueueUnavailable) as raised:
        service.backup_create(backup_type="full", trigger="api", created_via="api")
    backup = Backup.objects.get()
    assert (backup.status, backup.error) == ("failed", QUEUE_UNAVAILABLE)
    assert raised.value.job_id == str(backup.job_id)
    assert BackgroundJob.objects.get(pk=backup.job_id).status == "failed"


# --- run ---------------------------------------------------------------------------------------------------


def test_a_backup_run_completes_with_size_checksum_and_counts(backup_dir):
    AdapterFactory.create_batch(3)
    backup = completed_backup("full")
    path = stored_file(backup)
    assert NAME.match(backup.file_name or "")
    assert path.parent == backup_dir
    assert (backup.size, backup.sha256) == (path.stat().st_size, sha256_of(path))
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read(MANIFEST))
    assert backup.counts == manifest["counts"]
    assert backup.counts["adapters"] == 3
    assert (manifest["kind"], manifest["backup_type"]) == ("backup", "full")
    assert leftovers(backup_dir) == []
    job = BackgroundJob.objects.get(pk=backup.job_id)
    assert (job.status, job.progress, job.created_via) == ("succeeded", 1.0, "cli")
    assert (
        job.message
        == f"Backup {backup.pk} completed: {path} ({service.format_size(backup.size or 0)}, sha256 {backup.sha256})"
    )
    assert job.result == {
        "backup_id": str(backup.pk), "file_name": backup.file_name, "size": backup.size, "sha256": backup.sha256,
        "counts": backup.counts,
    }  # fmt: skip
    assert backup.started_at is not None
    assert backup.finished_at is not None


def test_the_backup_type_selects_the_archive_options(backup_dir, monkeypatch):
    seen: list[tuple[Any, str, str | None]] = []
    real = service.archive_writer()

    def write(target: Any, options: Any, **kwargs: Any) -> Any:
        seen.append((options, kwargs["kind"], kwargs["backup_type"]))
        return real(target, options, **kwargs)

    _writer(monkeypatch, write)
    completed_backup("metadata_only")
    [(options, kind, backup_type)] = seen
    assert (kind, backup_type) == ("backup", "metadata_only")
    assert (options.lora_files, options.lora_previews, options.generation_images) == (False, False, False)
    assert (options.lora_embeddings, options.generations, options.user_data, options.analytics) == (True,) * 4


def test_a_failing_writer_fails_the_backup_and_removes_the_part_file(backup_dir, monkeypatch):
    parts: list[bool] = []

    def write(target: Any, options: Any, **kwargs: Any) -> Any:
        target.write(b"half an archive")
        parts.append(any(backup_dir.glob("*.part")))
        raise OSError(28, "No space left on device")

    _writer(monkeypatch, write)
    backup = service.backup_create_sync(backup_type="full", trigger="cli")
    assert parts == [True]
    assert backup.status == "failed"
    assert backup.error == "Backup failed: [Errno 28] No space left on device"
    assert list(backup_dir.iterdir()) == []
    job = BackgroundJob.objects.get(pk=backup.job_id)
    assert (job.status, job.error) == ("failed", backup.error)


def test_a_backup_cancelled_while_it_writes_ends_failed_and_leaves_no_file(backup_dir, monkeypatch, fast_cancel):
    AdapterFactory.create_batch(2)
    observed: dict[str, Any] = {}

    def write(target: Any, options: Any, *, progress: Any, **kwargs: Any) -> Any:
        target.write(b"x" * 1024)
        progress.advance(1024, "adapters/a/adapter.json")
        job_cancel(job=BackgroundJob.objects.get(kind="backup", status="running"))
        observed["cancelled"] = progress.cancelled()
        raise ArchiveCancelled

    _writer(monkeypatch, write)
    backup = service.backup_create_sync(backup_type="full", trigger="cli")
    assert observed == {"cancelled": True}
    assert (backup.status, backup.error) == ("failed", "Cancelled by user")
    assert BackgroundJob.objects.get(pk=backup.job_id).status == "cancelled"
    assert list(backup_dir.iterdir()) == []


def test_a_cancel_after_the_last_check_keeps_neither_the_file_nor_a_completed_row(backup_dir, monkeypatch):
    real = service.archive_writer()

    def write(target: Any, options: Any, **kwargs: Any) -> Any:
        manifest = real(target, options, **kwargs)
        job_cancel(job=BackgroundJob.objects.get(kind="backup", status="running"))
        return manifest

    _writer(monkeypatch, write)
    backup = service.backup_create_sync(backup_type="full", trigger="cli")
    assert (backup.status, backup.error, backup.size) == ("failed", "Cancelled by user", None)
    assert list(backup_dir.iterdir()) == []


def test_a_backup_cancelled_while_pending_is_failed_at_once_and_its_task_does_nothing(backup_dir, api, sent_tasks):
    backup = service.backup_create(backup_type="full", trigger="api", created_via="api", enqueue=False)
    response = api.post(f"/api/v1/jobs/{backup.job_id}/cancel")
    assert response.status_code == 200, response.content
    backup.refresh_from_db()
    assert (backup.status, backup.error) == ("failed", "Cancelled by user")
    assert service.backup_run(str(backup.job_id)) is not None  # the revoked task runs anyway: a no-op
    backup.refresh_from_db()
    assert (backup.status, backup.file_name) == ("failed", None)
    assert not backup_dir.exists() or list(backup_dir.iterdir()) == []


def test_a_task_finding_its_job_cancelled_settles_the_backup(backup_dir):
    backup = service.backup_create(backup_type="full", trigger="api", created_via="api", enqueue=False)
    BackgroundJob.objects.filter(pk=backup.job_id).update(status="cancelled")  # cancelled without the hook
    service.backup_run(str(backup.job_id))
    backup.refresh_from_db()
    assert (backup.status, backup.error) == ("failed", "Cancelled by user")


def test_recovery_fails_a_backup_whose_worker_was_lost_and_removes_its_part_file(backup_dir, settings):
    backup = service.backup_create(backup_type="full", trigger="api", created_via="api", enqueue=False)
    job = BackgroundJob.objects.get(pk=backup.job_id)
    assert job.start()
    assert service._backup_start(backup)
    part = service.part_path(backup)
    assert part is not None
    backup_dir.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"half an archive")
    stale = timezone.now() - timedelta(seconds=settings.LORAFORGE_JOB_STALE_SECONDS + 5)
    BackgroundJob.objects.filter(pk=job.pk).update(heartbeat_at=stale)

    lines = jobs_recover()

    assert f"{job.pk} running → failed ({WORKER_LOST})" in lines
    backup.refresh_from_db()
    assert (backup.status, backup.error) == ("failed", WORKER_LOST)
    assert not part.exists()


# --- retention and delete ----------------------------------------------------------------------------------


def test_retention_deletes_the_oldest_completed_backups_beyond_the_limit(backup_dir, settings):
    settings.LORAFORGE_BACKUP_KEEP = 2
    first, second = completed_backup(), completed_backup()
    failed = Backup.objects.create(status="failed", error="boom")
    third = completed_backup()
    assert set(Backup.objects.values_list("pk", flat=True)) == {second.pk, third.pk, failed.pk}
    assert not stored_file(first).exists()
    assert stored_file(second).exists()
    assert stored_file(third).exists()


def test_retention_zero_keeps_every_backup_and_no_retention_skips_it(backup_dir, settings):
    settings.LORAFORGE_BACKUP_KEEP = 0
    for _ in range(3):
        completed_backup()
    settings.LORAFORGE_BACKUP_KEEP = 1
    completed_backup(retention=False)
    assert Backup.objects.filter(status="completed").count() == 4
    assert len(list(backup_dir.glob("*.zip"))) == 4


def test_delete_removes_the_file_and_the_row(backup_dir):
    backup = completed_backup()
    path = stored_file(backup)
    service.backup_delete(backup)
    assert not Backup.objects.filter(pk=backup.pk).exists()
    assert not path.exists()


@pytest.mark.parametrize("status", ["pending", "running"])
def test_delete_refuses_a_backup_in_progress(backup_dir, status):
    backup = Backup.objects.create(status=status)
    with pytest.raises(Conflict, match="Backup is in progress"):
        service.backup_delete(backup)
    assert Backup.objects.filter(pk=backup.pk).exists()


def test_files_in_the_backups_folder_unknown_to_the_database_are_left_alone(backup_dir, settings):
    settings.LORAFORGE_BACKUP_KEEP = 1
    backup_dir.mkdir()
    stranger = backup_dir / "backup_20200101_000000_abcdef.zip"
    stranger.write_bytes(b"not ours")
    completed_backup()
    completed_backup()
    assert stranger.read_bytes() == b"not ours"


# --- verify ------------------------------------------------------------------------------------------------


def test_verify_finds_nothing_wrong_with_a_fresh_backup(backup_dir):
    AdapterFactory.create_batch(2)
    assert restore.backup_verify(completed_backup()) == []


def test_verify_reports_a_backup_changed_by_one_byte(backup_dir):
    AdapterFactory.create_batch(2)
    backup = completed_backup()
    path = stored_file(backup)
    tamper(path, offset=first_member_data_offset(path))
    problems = restore.backup_verify(backup)
    found = sha256_of(path)
    assert problems[0] == f"Backup file does not match its recorded SHA-256 (expected {backup.sha256}, found {found})"
    assert len(problems) == 2  # and the member itself no longer matches the manifest


def test_verify_reports_a_missing_file_and_an_unfinished_backup(backup_dir):
    backup = completed_backup()
    stored_file(backup).unlink()
    assert restore.backup_verify(backup) == ["Backup file is missing"]
    assert restore.backup_verify(Backup.objects.create(status="running")) == ["Backup is not completed"]


# --- restore -----------------------------------------------------------------------------------------------


def _recording_importer(monkeypatch: pytest.MonkeyPatch, result: dict[str, Any] | None = None) -> list[dict]:
    calls: list[dict] = []

    def archive_import_file(path: Path, **kwargs: Any) -> dict[str, Any]:
        calls.append({"path": path, **kwargs})
        return result or {
            "file": kwargs["display_name"], "status": "imported", "created": 2, "updated": 1, "skipped": 0,
            "adapters": [], "parts": {"embeddings": 3, "generation_jobs": 0, "generation_results": 0},
            "warnings": [], "errors": [],
        }  # fmt: skip

    monkeypatch.setattr(restore, "archive_importer", lambda: archive_import_file)
    return calls


def test_restore_imports_the_backup_file_and_keeps_the_result(backup_dir, monkeypatch, sent_tasks):
    backup = completed_backup()
    calls = _recording_importer(monkeypatch)
    job = restore.backup_restore_start(backup, mode="replace", created_via="api")
    assert sent_tasks == [("backups.run_restore", [str(job.pk)], {})]
    restore.restore_run(str(job.pk))
    job.refresh_from_db()
    assert [(call["path"], call["display_name"], call["mode"]) for call in calls] == [
        (stored_file(backup), backup.file_name, "replace")
    ]
    assert job.status == "succeeded"
    assert job.result == {**job.result, "file": backup.file_name, "status": "imported", "created": 2}
    assert (
        job.message
        == f"Restored {backup.file_name} (replace): 2 created, 1 updated, 0 skipped; 3 embeddings, 0 generation jobs"
    )


def test_a_tampered_backup_is_never_restored(backup_dir, monkeypatch, sent_tasks):
    AdapterFactory.create_batch(2)
    backup = completed_backup()
    tamper(stored_file(backup))
    calls = _recording_importer(monkeypatch)
    job = restore.backup_restore_start(backup, mode="merge", created_via="api")
    restore.restore_run(str(job.pk))
    job.refresh_from_db()
    assert calls == []
    assert job.status == "failed"
    assert job.error is not None
    assert job.error.startswith("Backup file does not match its recorded SHA-256")
    assert job.result is not None
    assert job.result["status"] == "error"


def test_an_archive_error_fails_the_restore_job_with_its_message(backup_dir, monkeypatch, sent_tasks):
    backup = completed_backup()
    message = "Checksum mismatch for adapters/x/adapter.json"
    _recording_importer(
        monkeypatch, {"file": backup.file_name, "status": "error", "detail": message, "errors": [message]}
    )
    job = restore.backup_restore_start(backup, mode="merge", created_via="api")
    restore.restore_run(str(job.pk))
    job.refresh_from_db()
    assert (job.status, job.error, job.result["status"]) == ("failed", message, "error")


def test_restore_refuses_an_unfinished_backup_and_a_second_restore(backup_dir, sent_tasks):
    with pytest.raises(Conflict, match="Backup is not completed"):
        restore.backup_restore_start(Backup.objects.create(status="running"), mode="merge", created_via="api")
    backup = completed_backup()
    first = restore.backup_restore_start(backup, mode="merge", created_via="api")
    with pytest.raises(Conflict, match="Another import or restore is running") as raised:
        restore.backup_restore_start(backup, mode="merge", created_via="api")
    assert raised.value.job_id == str(first.pk)


def test_archive_validate_rejects_a_tampered_member(backup_dir):
    AdapterFactory.create_batch(1)
    path = stored_file(completed_backup())
    tamper(path, offset=first_member_data_offset(path))
    with pytest.raises(ArchiveError):
        restore.archive_validator()(path)


def test_a_backup_past_its_time_limit_fails_and_leaves_no_file(backup_dir):
    import time

    from loraforge.jobs.deadline import TIME_LIMIT_EXCEEDED, deadline_end, deadline_start

    AdapterFactory.create_batch(2)
    token = deadline_start(0.001)
    time.sleep(0.01)
    try:
        backup = service.backup_create_sync(backup_type="full", trigger="cli")
    finally:
        deadline_end(token)
    assert (backup.status, backup.error) == ("failed", TIME_LIMIT_EXCEEDED)
    job = BackgroundJob.objects.get(pk=backup.job_id)
    assert (job.status, job.error) == ("failed", TIME_LIMIT_EXCEEDED)
    assert list(backup_dir.iterdir()) == []
