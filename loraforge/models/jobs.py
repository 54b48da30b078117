"""The job rows: ``JobRecord`` holds what every kind of job shares (SPEC 6.2); ``BackgroundJob`` is the core's kind
(scans, imports, exports, backups, restores, embeddings); ``deliveries.DeliveryJob`` is the other.

Every status write is one conditional ``UPDATE ... WHERE id = ? AND status IN (...)``: a write that matches no row
is a no-op, so late worker results, retries and recovery can never move a job out of a terminal state.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

MESSAGE_MAX_LENGTH = 500


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


def stale_before(now: datetime) -> datetime:
    """A ``running`` job whose heartbeat is older than this is orphaned (``LORAFORGE_JOB_STALE_SECONDS``)."""
    return now - timedelta(seconds=settings.LORAFORGE_JOB_STALE_SECONDS)


def stale_running(now: datetime) -> Q:
    """The ``running`` jobs of any kind whose worker is presumed lost (SPEC 6.2.6)."""
    cutoff = stale_before(now)
    return Q(status=JobStatus.RUNNING) & (
        Q(heartbeat_at__lt=cutoff)
        | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
        | Q(heartbeat_at__isnull=True, started_at__isnull=True)
    )


class JobRecord(models.Model):
    """The fields and the conditional writes every kind of job has; a kind adds its own fields and transitions."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=MESSAGE_MAX_LENGTH, default="", blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(null=True, blank=True)
    celery_task_id = models.CharField(max_length=64, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def written_with_every_transition(self) -> dict[str, Any]:
        """Fields a kind writes with each transition (``DeliveryJob``: ``updated_at``)."""
        return {}

    def _transition(self, expected: tuple[str, ...], **fields: Any) -> bool:
        """One conditional write; the instance then shows the row as stored, whoever wrote it."""
        changes = {**self.written_with_every_transition(), **fields}
        updated = type(self)._default_manager.filter(pk=self.pk, status__in=expected).update(**changes)
        self.refresh_from_db()
        return bool(updated)

    def heartbeat(self) -> bool:
        """Renew ``heartbeat_at`` of a ``running`` job (False once it left ``running``)."""
        return self._transition((JobStatus.RUNNING,), heartbeat_at=timezone.now())

    def heartbeat_is_fresh(self, now: datetime | None = None) -> bool:
        beat = self.heartbeat_at or self.started_at
        return beat is not None and beat >= stale_before(now or timezone.now())


class BackgroundJob(JobRecord):
    kind = models.CharField(max_length=32, choices=BackgroundJobKind.choices, db_index=True)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True)
    created_via = models.CharField(max_length=16, choices=JobOrigin.choices, default=JobOrigin.API)

    class Meta(JobRecord.Meta):
        pass

    def __str__(self) -> str:
        return f"{self.kind} job {self.id} ({self.status})"

    # --- conditional writes -------------------------------------------------------------
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
            fields["message"] = message[:MESSAGE_MAX_LENGTH]
        return self._transition((JobStatus.RUNNING,), **fields)

    def succeed(self, result: dict[str, Any] | None = None, message: str = "") -> bool:
        return self._transition(
            (JobStatus.RUNNING,),
            status=JobStatus.SUCCEEDED,
            progress=1.0,
            result=result,
            message=message[:MESSAGE_MAX_LENGTH],
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
