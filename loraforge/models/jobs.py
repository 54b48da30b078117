"""``BackgroundJob``: the database row that is the truth about a long operation.

Every status write is one conditional ``UPDATE ... WHERE status IN (...)``: a write that
matches no row is a no-op, so nothing can move a job out of a terminal state.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.utils import timezone


class JobStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE_STATUSES = (JobStatus.PENDING, JobStatus.RUNNING)


class JobOrigin(models.TextChoices):
    API = "api"
    CLI = "cli"
    ADMIN = "admin"
    SCHEDULE = "schedule"


class BackgroundJobKind(models.TextChoices):
    SCAN = "scan"
    IMPORT = "import"
    EXPORT = "export"
    BACKUP = "backup"
    RESTORE = "restore"
    EMBEDDINGS = "embeddings"


class BackgroundJob(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=32, choices=BackgroundJobKind.choices, db_index=True)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=500, default="", blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(null=True, blank=True)
    celery_task_id = models.CharField(max_length=64, null=True, blank=True)
    created_via = models.CharField(max_length=16, choices=JobOrigin.choices, default=JobOrigin.API)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} job {self.id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    # --- conditional writes -------------------------------------------------------------
    def _transition(self, expected: tuple[str, ...], **fields: Any) -> bool:
        updated = type(self).objects.filter(pk=self.pk, status__in=expected).update(**fields)
        if updated:
            for name, value in fields.items():
                setattr(self, name, value)
        else:
            self.refresh_from_db()
        return bool(updated)

    def start(self) -> bool:
        now = timezone.now()
        return self._transition(
            (JobStatus.PENDING,),
            status=JobStatus.RUNNING,
            started_at=self.started_at or now,
            heartbeat_at=now,
        )

    def set_progress(self, progress: float, message: str | None = None) -> bool:
        fields: dict[str, Any] = {"progress": max(0.0, min(1.0, progress)), "heartbeat_at": timezone.now()}
        if message is not None:
            fields["message"] = message[:500]
        return self._transition((JobStatus.RUNNING,), **fields)

    def succeed(self, result: dict[str, Any] | None = None, message: str = "") -> bool:
        return self._transition(
            (JobStatus.RUNNING,),
            status=JobStatus.SUCCEEDED,
            progress=1.0,
            result=result,
            message=message[:500],
            finished_at=timezone.now(),
        )

    def fail(self, error: str, result: dict[str, Any] | None = None) -> bool:
        return self._transition(
            ACTIVE_STATUSES,
            status=JobStatus.FAILED,
            error=error,
            result=result,
            finished_at=timezone.now(),
        )

    def cancel(self) -> bool:
        now = timezone.now()
        return self._transition(
            ACTIVE_STATUSES,
            status=JobStatus.CANCELLED,
            cancel_requested_at=now,
            finished_at=now,
        )
