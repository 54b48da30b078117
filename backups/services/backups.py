"""Backups (SPEC 3.7, 5.9, 6.10.4): a ``Backup`` row and its BackgroundJob, the archive written by the task
``backups.run_backup`` (or inline by ``manage.py backup``), retention, delete, and the settling of a row whose job
was cancelled or lost its worker.

The Backup row has no ``cancelled`` state: a backup whose job is cancelled ends ``failed`` with "Cancelled by user"
(SPEC 5.11). Every status write on the row is conditional on ``pending``/``running``, so whoever settles it first
(the task, the cancel hook, the recovery hook) wins and the others are no-ops.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import secrets
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, cast

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backups.archive.estimate import format_size
from backups.archive.format import (
    BACKUP_CANCELLED,
    BACKUP_IN_PROGRESS,
    KIND_BACKUP,
    ArchiveOptions,
    Manifest,
)
from backups.archive.progress import ArchiveCancelled, ArchiveProgress
from backups.models import Backup, BackupStatus, BackupTrigger
from backups.services.progress import JobArchiveProgress
from loraforge.errors import Conflict
from loraforge.jobs.background import (
    background_job_create,
    background_job_take,
    job_enqueue,
    job_fail,
    job_publish,
)
from loraforge.jobs.deadline import TIME_LIMIT_EXCEEDED
from loraforge.jobs.enqueue import QUEUE_UNAVAILABLE, QueueUnavailable
from loraforge.jobs.reporters import JobProgressReporter
from loraforge.models import BackgroundJob
from loraforge.models.jobs import BackgroundJobKind, JobStatus

logger = logging.getLogger("loraforge.backups")

PART_SUFFIX = ".part"
HASH_CHUNK = 1024 * 1024
BACKUP_ACTIVE = (BackupStatus.PENDING, BackupStatus.RUNNING)
BACKUP_LOST = "Backup job ended without finishing the backup"

Writer = Callable[..., Manifest]


def archive_writer() -> Writer:
    """``backups.archive.build.archive_write``, looked up when a backup runs (tests may wrap it)."""
    return cast(Writer, importlib.import_module("backups.archive.build").archive_write)


# --- files ---------------------------------------------------------------------------------------------------


def backup_dir() -> Path:
    return Path(settings.LORAFORGE_BACKUP_DIR)


def backup_file_name(now: Any = None) -> str:
    """``backup_<YYYYmmdd_HHMMSS>_<6 hex>.zip`` (SPEC 3.7)."""
    moment = now or timezone.now()
    return f"backup_{moment:%Y%m%d_%H%M%S}_{secrets.token_hex(3)}.zip"


def backup_path(backup: Backup) -> Path | None:
    """The archive of a backup in the backups folder; None without a file name (or one that is not a plain name)."""
    name = backup.file_name or ""
    if not name or name != os.path.basename(name) or name.startswith("."):
        return None
    return backup_dir() / name


def part_path(backup: Backup) -> Path | None:
    path = backup_path(backup)
    return path.with_name(path.name + PART_SUFFIX) if path is not None else None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _remove(path: Path | None) -> None:
    if path is None:
        return
    try:
        path.unlink(missing_ok=True)
    except OSError:
        logger.warning("Could not remove %s", path, exc_info=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def archive_write_atomic(
    target: Path, *, backup_type: str, progress: ArchiveProgress | None = None
) -> tuple[Manifest, int, str]:
    """Write a backup archive to ``<target>.part``, fsync it, rename it to ``target``; returns the manifest, the
    size and the whole-file SHA-256. The part file is removed on any failure (cancel included)."""
    part = target.with_name(target.name + PART_SUFFIX)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with part.open("xb") as handle:
            manifest = _write(handle, backup_type=backup_type, progress=progress)
            handle.flush()
            os.fsync(handle.fileno())
        sha256 = file_sha256(part)
        size = part.stat().st_size
        os.replace(part, target)
    except BaseException:
        _remove(part)
        raise
    _fsync_dir(target.parent)
    return manifest, size, sha256


def _write(handle: BinaryIO, *, backup_type: str, progress: ArchiveProgress | None) -> Manifest:
    options = ArchiveOptions.for_backup(backup_type)
    return archive_writer()(handle, options, kind=KIND_BACKUP, backup_type=backup_type, progress=progress)


# --- create ----------------------------------------------------------------------------------------------------


def backup_create(*, backup_type: str, trigger: str, created_via: str, enqueue: bool = True) -> Backup:
    """A ``pending`` Backup and its BackgroundJob (kind ``backup``), the task queued on commit. When the broker
    refuses, both fail with "Task queue unavailable" and ``QueueUnavailable`` (503 with ``job_id``) is raised.
    ``enqueue=False`` (the command) leaves them pending for ``backup_run`` inline."""
    queued: list[bool] = []
    with transaction.atomic():
        params = {"backup_type": backup_type, "trigger": trigger}
        job = background_job_create(kind=BackgroundJobKind.BACKUP, params=params, created_via=created_via)
        backup = Backup.objects.create(backup_type=backup_type, trigger=trigger, job=job)
        if enqueue:
            transaction.on_commit(lambda: queued.append(job_enqueue(job)))
    if queued == [False]:
        backup_fail(backup, QUEUE_UNAVAILABLE)
        raise QueueUnavailable(job.pk)
    backup.refresh_from_db()
    return backup


def backup_create_sync(
    *,
    backup_type: str,
    trigger: str,
    progress: ArchiveProgress | None = None,
    retention: bool = True,
) -> Backup:
    """Create and run a backup inline (``manage.py backup``, import's ``backup_before``); the same rows and events
    as a queued one. Returns the row as it ended (``completed`` or ``failed``)."""
    backup = backup_create(backup_type=backup_type, trigger=trigger, created_via=trigger, enqueue=False)
    assert backup.job_id is not None
    backup_run(backup.job_id, progress=progress, retention=retention)
    backup.refresh_from_db()
    return backup


# --- run -------------------------------------------------------------------------------------------------------


def backup_run(
    job_id: uuid.UUID | str, *, progress: ArchiveProgress | None = None, retention: bool = True
) -> Backup | None:
    """The task's body: take the job, write the archive, record the outcome, apply retention. Idempotent: a job
    already taken or finished is left alone (a cancelled or failed one settles its Backup row)."""
    job, started = background_job_take(job_id=job_id, kind=BackgroundJobKind.BACKUP)
    if job is None:
        return None
    backup = Backup.objects.filter(job=job).first()
    if not started or backup is None:
        if backup is not None and job.is_terminal:
            backup_settle(backup, job)
        elif backup is None and started:
            job_fail(job, "Backup not found")
        return backup
    if not _backup_start(backup):
        job_fail(job, backup.error or BACKUP_LOST)
        return backup
    if _backup_write(backup, job, progress) and retention:
        backups_prune()
    backup.refresh_from_db()
    return backup


def _backup_start(backup: Backup) -> bool:
    name = backup_file_name()
    started = Backup.objects.filter(pk=backup.pk, status=BackupStatus.PENDING).update(
        status=BackupStatus.RUNNING, started_at=timezone.now(), file_name=name
    )
    backup.refresh_from_db()
    return bool(started)


def _backup_write(backup: Backup, job: BackgroundJob, console: ArchiveProgress | None) -> bool:
    target = backup_path(backup)
    assert target is not None
    with JobProgressReporter(job) as reporter:
        progress = JobArchiveProgress(reporter, verb="Writing", console=console)
        try:
            manifest, size, sha256 = archive_write_atomic(target, backup_type=backup.backup_type, progress=progress)
        except ArchiveCancelled:
            logger.info("Backup %s cancelled while writing; its partial file was removed", backup.pk)
            backup_fail(backup, BACKUP_CANCELLED)
            return False
        except SoftTimeLimitExceeded:
            _fail_both(backup, job, TIME_LIMIT_EXCEEDED)
            return False
        except Exception as exc:
            logger.exception("Backup %s failed", backup.pk)
            _fail_both(backup, job, f"Backup failed: {exc}")
            return False
    return _backup_complete(backup, job, manifest, size, sha256, target)


def _fail_both(backup: Backup, job: BackgroundJob, error: str) -> None:
    job_fail(job, error)
    backup_fail(backup, error)


def _backup_complete(
    backup: Backup, job: BackgroundJob, manifest: Manifest, size: int, sha256: str, target: Path
) -> bool:
    """The job succeeds and the row completes in one transaction; a job cancelled at the last moment keeps neither
    the row completed nor the file."""
    counts = dict(manifest.counts)
    result: dict[str, Any] = {"backup_id": str(backup.pk), "file_name": backup.file_name, "size": size}
    result.update(sha256=sha256, counts=counts)
    message = backup_summary(backup, size=size, sha256=sha256, path=target)
    with transaction.atomic():
        done = job.succeed(result, message=message) and _backup_mark_completed(backup, size, sha256, counts)
        if not done:
            transaction.set_rollback(True)
    if done:
        job_publish(job)
        backup.refresh_from_db()
        return True
    _remove(target)
    job.refresh_from_db()
    backup_fail(backup, BACKUP_CANCELLED if job.status == JobStatus.CANCELLED else job.error or BACKUP_LOST)
    return False


def _backup_mark_completed(backup: Backup, size: int, sha256: str, counts: dict[str, int]) -> bool:
    fields = {"size": size, "sha256": sha256, "counts": counts, "finished_at": timezone.now(), "error": None}
    return bool(
        Backup.objects.filter(pk=backup.pk, status=BackupStatus.RUNNING).update(status=BackupStatus.COMPLETED, **fields)
    )


def backup_summary(backup: Backup, *, size: int, sha256: str, path: Path) -> str:
    """``Backup <id> completed: <path> (1.50 MB, sha256 <hex>)`` (SPEC 8)."""
    return f"Backup {backup.pk} completed: {path} ({format_size(size)}, sha256 {sha256})"


# --- failure and settling --------------------------------------------------------------------------------------


def backup_fail(backup: Backup, error: str) -> bool:
    """``pending``/``running`` → ``failed`` with ``error``, its part file removed; a no-op on a finished row."""
    failed = Backup.objects.filter(pk=backup.pk, status__in=BACKUP_ACTIVE).update(
        status=BackupStatus.FAILED, error=error, finished_at=timezone.now()
    )
    backup.refresh_from_db()
    _remove(part_path(backup))
    return bool(failed)


def backup_settle(backup: Backup, job: BackgroundJob) -> bool:
    """A backup whose job ended without it (cancelled, failed by recovery or a time limit) follows the job."""
    if job.status == JobStatus.CANCELLED:
        return backup_fail(backup, BACKUP_CANCELLED)
    if job.status == JobStatus.FAILED:
        return backup_fail(backup, job.error or BACKUP_LOST)
    return False


def backups_settle_for_job(job: BackgroundJob) -> None:
    """The ``background_job_stopped`` receiver (cancel endpoint/admin, recovery sweep): settle the job's backup."""
    if job.kind != BackgroundJobKind.BACKUP:
        return
    for backup in Backup.objects.filter(job_id=job.pk, status__in=BACKUP_ACTIVE):
        backup_settle(backup, job)


def on_background_job_stopped(sender: Any, job: BackgroundJob, **kwargs: Any) -> None:
    backups_settle_for_job(job)


# --- retention and delete --------------------------------------------------------------------------------------


def backups_prune(keep: int | None = None) -> list[uuid.UUID]:
    """Completed backups beyond ``LORAFORGE_BACKUP_KEEP`` (0 = keep all), oldest first, deleted (file, then row)."""
    keep = settings.LORAFORGE_BACKUP_KEEP if keep is None else keep
    if keep <= 0:
        return []
    completed = Backup.objects.filter(status=BackupStatus.COMPLETED).order_by("-created_at", "-id")
    removed: list[uuid.UUID] = []
    for backup in reversed(list(completed[keep:])):
        _remove(backup_path(backup))
        Backup.objects.filter(pk=backup.pk).delete()
        removed.append(backup.pk)
        logger.info("Backup %s removed by retention (keep %d)", backup.pk, keep)
    return removed


def backup_delete(backup: Backup) -> None:
    """The file, then the row; 409 "Backup is in progress" while it is pending or running."""
    if backup.status in BACKUP_ACTIVE:
        raise Conflict(BACKUP_IN_PROGRESS)
    _remove(backup_path(backup))
    _remove(part_path(backup))
    Backup.objects.filter(pk=backup.pk).delete()


def backup_trigger_of(created_via: str) -> str:
    return created_via if created_via in BackupTrigger.values else BackupTrigger.API
