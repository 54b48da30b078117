"""Celery tasks of the backups app: thin wrappers around the services (SPEC 6.10.4)."""

from __future__ import annotations

import contextlib
from typing import Any

from celery import shared_task

from backups.models import BackupTrigger, BackupType
from backups.services.backups import backup_create, backup_run
from backups.services.restore import restore_run
from loraforge.jobs.enqueue import QueueUnavailable

BACKUP_TIME_LIMIT = 24 * 3600  # SPEC 6.2.5: backups and restores may run for a day
# A backup or restore job: redelivered if its worker dies (the recovery sweep settles the job), no result kept.
ARCHIVE_JOB: dict[str, Any] = {
    "queue": "default", "acks_late": True, "reject_on_worker_lost": True, "ignore_result": True,
    "soft_time_limit": BACKUP_TIME_LIMIT, "time_limit": BACKUP_TIME_LIMIT + 120,
}  # fmt: skip


@shared_task(name="backups.run_backup", **ARCHIVE_JOB)
def run_backup(job_id: str) -> None:
    """Write the backup of job ``job_id`` (a BackgroundJob of kind ``backup``); see ``backups.services.backups``."""
    backup_run(job_id)


@shared_task(name="backups.run_restore", **ARCHIVE_JOB)
def run_restore(job_id: str) -> None:
    """Restore the backup of job ``job_id`` (a BackgroundJob of kind ``restore``); see ``backups.services.restore``."""
    restore_run(job_id)


@shared_task(name="backups.scheduled_backup", queue="default", ignore_result=True, time_limit=300)
def scheduled_backup() -> None:
    """The beat's backup (``LORAFORGE_BACKUP_INTERVAL_HOURS``): a ``metadata_only`` backup, queued as a job."""
    with contextlib.suppress(QueueUnavailable):  # the row records the failure ("Task queue unavailable")
        backup_create(
            backup_type=BackupType.METADATA_ONLY, trigger=BackupTrigger.SCHEDULE, created_via=BackupTrigger.SCHEDULE
        )
