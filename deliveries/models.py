"""``DeliveryJob``: the single source of truth for every delivery and generation (SPEC 3.3, 6.2).

Its shared fields, conditional writes, heartbeat and staleness come from ``loraforge.models.jobs.JobRecord``;
progress, heartbeat and message writes require ``status = 'running'``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import models
from django.db.models import F
from django.utils import timezone

from loraforge.models.jobs import ACTIVE_STATUSES, MESSAGE_MAX_LENGTH, JobRecord, JobStatus, stale_running

PROMPT_MAX_LENGTH = 20_000
CANCELLED_BY_USER = "Cancelled by user"

# Raw status -> the normalised status of /generation/* and the WebSocket (SPEC 5.1).
NORMALISED_STATUS = {
    JobStatus.PENDING: "queued",
    JobStatus.RUNNING: "processing",
    JobStatus.SUCCEEDED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}


class DeliveryKind(models.TextChoices):
    GENERATION = "generation"
    DELIVERY = "delivery"


class DeliveryMode(models.TextChoices):
    SDNEXT = "sdnext"
    HTTP = "http"
    CLI = "cli"


class DeliveryOrigin(models.TextChoices):
    DELIVERIES = "deliveries"
    COMPOSE = "compose"
    GENERATE = "generate"
    QUEUE = "queue"
    ADMIN = "admin"


class DeliveryJob(JobRecord):
    kind = models.CharField(max_length=16, choices=DeliveryKind.choices)  # indexed by delivery_kind_created
    mode = models.CharField(max_length=32, db_index=True)
    prompt = models.TextField()
    current_step = models.IntegerField(null=True, blank=True)
    total_steps = models.IntegerField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    error_code = models.CharField(max_length=64, null=True, blank=True)
    requested_backend = models.CharField(max_length=64, default="sdnext")
    backend = models.ForeignKey(
        "generation.GenerationBackend", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    backend_name = models.CharField(max_length=64, null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    attempts = models.IntegerField(default=0)
    worker = models.CharField(max_length=255, null=True, blank=True)
    created_via = models.CharField(max_length=16, choices=DeliveryOrigin.choices, default=DeliveryOrigin.DELIVERIES)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(JobRecord.Meta):
        indexes = [
            models.Index(fields=["status", "created_at"], name="delivery_status_created"),
            models.Index(fields=["kind", "created_at"], name="delivery_kind_created"),
            models.Index(fields=["status", "finished_at"], name="delivery_status_finished"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"

    @property
    def is_generation(self) -> bool:
        return self.kind == DeliveryKind.GENERATION

    @property
    def normalised_status(self) -> str:
        return NORMALISED_STATUS.get(JobStatus(self.status), self.status)

    @property
    def progress_percent(self) -> int:
        return round(100 * self.progress)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    # --- conditional writes (SPEC 6.2.1) -------------------------------------------------------
    def written_with_every_transition(self) -> dict[str, Any]:
        return {"updated_at": timezone.now()}

    def start(self, *, worker: str, backend: Any = None) -> bool:
        """``pending`` → ``running``: ``attempts + 1``, ``started_at`` the first time only, fresh heartbeat."""
        now = timezone.now()
        fields: dict[str, Any] = {
            "status": JobStatus.RUNNING,
            "started_at": self.started_at or now,
            "attempts": F("attempts") + 1,
            "worker": worker[:255],
            "heartbeat_at": now,
            "message": "",
        }
        if backend is not None:
            fields.update(backend=backend, backend_name=backend.name)
        return self._transition((JobStatus.PENDING,), **fields)

    def set_progress(
        self,
        *,
        progress: float | None = None,
        current_step: int | None = None,
        total_steps: int | None = None,
        eta_seconds: float | None = None,
        message: str | None = None,
    ) -> bool:
        """A progress/heartbeat write (running only); ``None`` arguments keep the stored value
        (except ``eta_seconds``, which is always written)."""
        fields: dict[str, Any] = {"heartbeat_at": timezone.now(), "eta_seconds": eta_seconds}
        if progress is not None:
            fields["progress"] = max(0.0, min(1.0, progress))
        if current_step is not None:
            fields["current_step"] = current_step
        if total_steps is not None:
            fields["total_steps"] = total_steps
        if message is not None:
            fields["message"] = message[:MESSAGE_MAX_LENGTH]
        return self._transition((JobStatus.RUNNING,), **fields)

    def wait_message(self, message: str) -> bool:
        """A pending job waiting for a free backend: its message and ``enqueued_at`` are refreshed."""
        return self._transition((JobStatus.PENDING,), message=message[:MESSAGE_MAX_LENGTH], enqueued_at=timezone.now())

    def succeed(self, *, result: dict[str, Any], message: str = "") -> bool:
        return self._transition(
            (JobStatus.RUNNING,),
            status=JobStatus.SUCCEEDED,
            progress=1.0,
            eta_seconds=None,
            result=result,
            message=message[:MESSAGE_MAX_LENGTH],
            error=None,
            error_code=None,
            finished_at=timezone.now(),
        )

    def fail(
        self,
        *,
        error: str,
        error_code: str,
        result: dict[str, Any] | None = None,
        expected: tuple[str, ...] = ACTIVE_STATUSES,
    ) -> bool:
        return self._transition(
            expected,
            status=JobStatus.FAILED,
            error=error,
            error_code=error_code[:64],
            result=result,
            message=error[:MESSAGE_MAX_LENGTH],
            eta_seconds=None,
            finished_at=timezone.now(),
        )

    def cancel(self, *, result: dict[str, Any] | None = None) -> bool:
        now = timezone.now()
        fields: dict[str, Any] = {
            "status": JobStatus.CANCELLED,
            "error": CANCELLED_BY_USER,
            "error_code": "cancelled",
            "message": CANCELLED_BY_USER,
            "result": result,
            "eta_seconds": None,
            "finished_at": now,
        }
        if self.status == JobStatus.RUNNING:
            fields["cancel_requested_at"] = now
        return self._transition((self.status,) if self.status in ACTIVE_STATUSES else ACTIVE_STATUSES, **fields)

    def requeue(self, *, message: str, now: datetime) -> bool:
        """Recovery only: a ``running`` job still stale at ``now`` → ``pending``."""
        updated = (
            type(self)
            .objects.filter(stale_running(now), pk=self.pk)
            .update(
                status=JobStatus.PENDING,
                message=message[:MESSAGE_MAX_LENGTH],
                worker=None,
                heartbeat_at=None,
                progress=0.0,
                current_step=None,
                total_steps=None,
                eta_seconds=None,
                updated_at=timezone.now(),
            )
        )
        self.refresh_from_db()
        return bool(updated)


class DeliveryJobAdapter(models.Model):
    """Which adapters a job used, with the weight printed in the prompt (SPEC 3.3, 6.2.7)."""

    id = models.BigAutoField(primary_key=True)
    # Both keys are indexed as the leading column of a composite: (job, position) and (adapter, job).
    job = models.ForeignKey(DeliveryJob, on_delete=models.CASCADE, related_name="adapter_links", db_index=False)
    adapter = models.ForeignKey(
        "adapters.Adapter", null=True, blank=True, on_delete=models.SET_NULL, related_name="job_links", db_index=False
    )
    adapter_name = models.CharField(max_length=255)
    sdnext_name = models.CharField(max_length=200)
    weight = models.FloatField()
    position = models.IntegerField()

    class Meta:
        ordering = ["job", "position"]
        constraints = [models.UniqueConstraint(fields=["job", "position"], name="delivery_adapter_job_position")]
        indexes = [models.Index(fields=["adapter", "job"], name="delivery_adapter_adapter_job")]

    def __str__(self) -> str:
        return f"<lora:{self.sdnext_name}:{self.weight:g}>"
