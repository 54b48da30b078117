"""One import or restore at a time (SPEC 5.9): the BackgroundJob of an import or a restore is created only while no
other one is pending or running, decided under a lock so two requests cannot both start."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection, transaction

from backups.archive.format import IMPORT_RUNNING
from loraforge.errors import Conflict
from loraforge.jobs.background import background_job_create
from loraforge.models import BackgroundJob
from loraforge.models.jobs import ACTIVE_STATUSES, BackgroundJobKind

EXCLUSIVE_KINDS = (BackgroundJobKind.IMPORT, BackgroundJobKind.RESTORE)
_LOCK_KEY = 0x4C46_494D  # PostgreSQL advisory lock serialising import/restore starts ("LFIM")


class ImportAlreadyRunning(Conflict):
    def __init__(self, job_id: uuid.UUID | str) -> None:
        super().__init__(IMPORT_RUNNING, job_id=str(job_id))
        self.job_id = str(job_id)


def active_import() -> BackgroundJob | None:
    """The pending or running import/restore job, if any."""
    return (
        BackgroundJob.objects.filter(kind__in=EXCLUSIVE_KINDS, status__in=ACTIVE_STATUSES)
        .order_by("created_at")
        .first()
    )


def exclusive_job_create(*, kind: str, params: dict[str, Any], created_via: str) -> BackgroundJob:
    """A ``pending`` import/restore job, or ``ImportAlreadyRunning`` (409 with the other job's id).

    Call it outside any transaction: the job row is committed when this returns, so a concurrent start sees it.
    SQLite transactions here begin IMMEDIATE (one writer at a time); PostgreSQL takes an advisory lock.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        running = active_import()
        if running is not None:
            raise ImportAlreadyRunning(running.pk)
        return background_job_create(kind=kind, params=params, created_via=created_via)
