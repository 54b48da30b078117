"""Restore and verify a stored backup (SPEC 5.9, 6.10.4): a restore is an import of the backup's file, run as a
BackgroundJob (kind ``restore``), one import or restore at a time; the file's whole SHA-256 is checked against the
row first, so a file changed on disk is reported and never restored."""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from backups.archive.format import BACKUP_FILE_MISSING, BACKUP_NOT_COMPLETED, BACKUP_NOT_FOUND, ArchiveError
from backups.archive.progress import ArchiveProgress
from backups.archive.reader import ValidatedArchive
from backups.models import Backup, BackupStatus
from backups.services.backups import backup_path, file_sha256
from backups.services.exclusive import exclusive_job_create
from backups.services.progress import JobArchiveProgress
from loraforge.errors import Conflict
from loraforge.jobs.background import background_job_take, job_enqueue, job_fail, job_succeed
from loraforge.jobs.deadline import TIME_LIMIT_EXCEEDED
from loraforge.jobs.enqueue import QueueUnavailable
from loraforge.jobs.reporters import JobProgressReporter
from loraforge.models import BackgroundJob
from loraforge.models.jobs import BackgroundJobKind

logger = logging.getLogger("loraforge.backups")

RESTORE_MODES = ("merge", "replace", "dry-run")
BACKUP_TAMPERED = "Backup file does not match its recorded SHA-256 (expected {expected}, found {found})"
RESTORE_FAILED = "Restore failed"


def archive_importer() -> Any:
    """``backups.services.imports.archive_import_file``, looked up when a restore runs."""
    return importlib.import_module("backups.services.imports").archive_import_file


def archive_validator() -> Any:
    """``backups.archive.validate.archive_validate``, looked up when a verify runs."""
    return importlib.import_module("backups.archive.validate").archive_validate


# --- checks ----------------------------------------------------------------------------------------------------


def backup_file_problem(backup: Backup) -> str | None:
    """Why this backup's file cannot be trusted as recorded (not completed, missing, changed), or None."""
    if backup.status != BackupStatus.COMPLETED:
        return BACKUP_NOT_COMPLETED
    path = backup_path(backup)
    if path is None or not path.is_file():
        return BACKUP_FILE_MISSING
    found = file_sha256(path)
    if found != backup.sha256:
        return BACKUP_TAMPERED.format(expected=backup.sha256, found=found)
    return None


def archive_check(path: Path, *, max_members: int | None = None) -> tuple[ValidatedArchive | None, list[str]]:
    """Every member re-read against the manifest (``archive_validate``): the validated archive, or its problem."""
    try:
        return archive_validator()(path, max_members=max_members), []
    except ArchiveError as exc:
        return None, [str(exc)]


def backup_check(backup: Backup) -> tuple[ValidatedArchive | None, list[str]]:
    """A stored backup checked: the whole file's SHA-256 against the row, then every member against the manifest."""
    problem = backup_file_problem(backup)
    path = backup_path(backup)
    if problem in (BACKUP_NOT_COMPLETED, BACKUP_FILE_MISSING) or path is None:
        return None, [str(problem or BACKUP_FILE_MISSING)]
    # an untouched file gets the bound of its own manifest's counts; a tampered one the setting's
    archive, problems = archive_check(path, max_members=None if problem else backup_member_bound(backup))
    return archive, ([problem] if problem else []) + problems


def backup_verify(backup: Backup) -> list[str]:
    """The problems of a stored backup; empty means good (``backup_check``)."""
    return backup_check(backup)[1]


# --- restore ---------------------------------------------------------------------------------------------------


def backup_restore_start(backup: Backup, *, mode: str, created_via: str, enqueue: bool = True) -> BackgroundJob:
    """A ``pending`` restore job (409 "Backup is not completed"; 409 "Another import or restore is running" with
    ``job_id``), its task ``backups.run_restore`` queued (503 when the broker refuses)."""
    if backup.status != BackupStatus.COMPLETED:
        raise Conflict(BACKUP_NOT_COMPLETED)
    params = {"backup_id": str(backup.pk), "file": backup.file_name, "mode": mode}
    job = exclusive_job_create(kind=BackgroundJobKind.RESTORE, params=params, created_via=created_via)
    if enqueue and not job_enqueue(job):
        raise QueueUnavailable(job.pk)
    return job


def file_restore_start(path: Path, *, mode: str, created_via: str) -> BackgroundJob:
    """A restore job of an archive file that has no Backup row (``manage.py restore_backup FILE``), run inline."""
    params = {"path": str(path), "file": path.name, "mode": mode}
    return exclusive_job_create(kind=BackgroundJobKind.RESTORE, params=params, created_via=created_via)


def restore_run(job_id: uuid.UUID | str, *, progress: ArchiveProgress | None = None) -> BackgroundJob | None:
    """The task's body: verify the backup file, then import it with the job's mode. The job's result is the
    per-file import result; an ``error`` result fails the job with its message."""
    job, started = background_job_take(job_id=job_id, kind=BackgroundJobKind.RESTORE)
    if job is None or not started:
        return job
    source = _restore_source(job.params)
    if isinstance(source, str):
        job_fail(job, source, result=_error_result(job.params, source))
        return job
    path, display_name, max_members = source
    with JobProgressReporter(job) as reporter:
        reading = JobArchiveProgress(reporter, verb="Restoring", console=progress, phases=2)
        try:
            result = archive_importer()(
                path,
                display_name=display_name,
                mode=job.params.get("mode", "merge"),
                job=job,
                progress=reading,
                max_members=max_members,
            )
        except SoftTimeLimitExceeded:
            job_fail(job, TIME_LIMIT_EXCEEDED)
            return job
        except Exception as exc:
            logger.exception("Restore job %s failed", job.pk)
            job_fail(job, f"{RESTORE_FAILED}: {exc}")
            return job
    _restore_finish(job, result)
    return job


FIXED_MEMBERS = 16  # the JSON Lines members and the manifest (SPEC 6.10.1 lists 10)


def _restore_source(params: Mapping[str, Any]) -> tuple[Path, str, int | None] | str:
    """The file to import, its display name and its member bound, or why there is none (a tampered backup is never
    imported). A file named by path is any archive: ``LORAFORGE_IMPORT_MAX_MEMBERS`` bounds it. A stored backup
    whose SHA-256 matched its row is bounded by the members its own manifest counted (at least the setting)."""
    if params.get("path"):
        path = Path(params["path"])
        return (path, path.name, None) if path.is_file() else BACKUP_FILE_MISSING
    backup = Backup.objects.filter(pk=str(params.get("backup_id") or "")).first() if params.get("backup_id") else None
    if backup is None:
        return BACKUP_NOT_FOUND
    problem = backup_file_problem(backup)
    if problem is not None:
        return problem
    stored = backup_path(backup)
    assert stored is not None
    return stored, str(backup.file_name), backup_member_bound(backup)


def backup_member_bound(backup: Backup) -> int:
    """The most members a backup written by LoRAForge can hold: one per counted item (an adapter record, a file, an
    image ...) plus the fixed JSON members, never below ``LORAFORGE_IMPORT_MAX_MEMBERS``."""
    counted = sum(value for value in (backup.counts or {}).values() if isinstance(value, int) and value > 0)
    return max(settings.LORAFORGE_IMPORT_MAX_MEMBERS, counted + FIXED_MEMBERS)


def _error_result(params: Mapping[str, Any], message: str) -> dict[str, Any]:
    return {"file": params.get("file"), "status": "error", "detail": message, "errors": [message]}


def _restore_finish(job: BackgroundJob, result: dict[str, Any]) -> None:
    if result.get("status") == "error":
        errors = result.get("errors") or []
        job_fail(job, str(result.get("detail") or (errors[0] if errors else RESTORE_FAILED)), result=result)
        return
    job_succeed(job, result, message=restore_summary(result, mode=job.params.get("mode", "merge")))


def restore_summary(result: Mapping[str, Any], *, mode: str) -> str:
    """``Restored <file> (merge): 2 created, 1 updated, 0 skipped; 3 embeddings, 0 generation jobs`` (SPEC 8)."""
    parts = result.get("parts") or {}
    return (
        f"Restored {result.get('file')} ({mode}): {result.get('created', 0)} created, "
        f"{result.get('updated', 0)} updated, {result.get('skipped', 0)} skipped; "
        f"{parts.get('embeddings', 0)} embeddings, {parts.get('generation_jobs', 0)} generation jobs"
    )
