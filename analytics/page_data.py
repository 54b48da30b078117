"""Rows the dashboard page lists besides the API bodies: recent and running deliveries, backends' cached health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from deliveries.models import DeliveryJob
from generation.models import GenerationBackend

RECENT_JOBS = 10
RUNNING_JOBS = 20
PROMPT_CHARS = 60
ACTIVE = ("pending", "running")
BACKEND_FIELDS = ("name", "url", "enabled", "healthy", "last_error", "last_checked_at")
JOB_FIELDS = (
    "id",
    "kind",
    "status",
    "prompt",
    "progress",
    "message",
    "created_at",
    "backend_name",
    "requested_backend",
)


@dataclass(frozen=True)
class JobRow:
    id: str
    kind: str
    status: str
    prompt: str
    backend: str
    created_at: datetime
    progress_percent: int
    message: str


@dataclass(frozen=True)
class BackendRow:
    name: str
    url: str
    health: str  # "healthy", "unhealthy", "unknown" (never checked) or "disabled"
    last_error: str
    last_checked_at: datetime | None


def cut_prompt(prompt: str) -> str:
    """The first 60 characters of a prompt, ``…`` appended when cut."""
    return prompt if len(prompt) <= PROMPT_CHARS else prompt[:PROMPT_CHARS] + "…"


def _row(job: DeliveryJob) -> JobRow:
    return JobRow(
        id=str(job.pk),
        kind=job.kind,
        status=job.status,
        prompt=cut_prompt(job.prompt),
        backend=job.backend_name or job.requested_backend,
        created_at=job.created_at,
        progress_percent=round(100 * job.progress),
        message=job.message,
    )


def recent_jobs() -> list[JobRow]:
    """The last 10 deliveries by creation (one query)."""
    jobs = DeliveryJob.objects.only(*JOB_FIELDS).order_by("-created_at", "-pk")[:RECENT_JOBS]
    return [_row(job) for job in jobs]


def running_jobs() -> list[JobRow]:
    """Pending and running deliveries, oldest first (one query, at most 20)."""
    jobs = DeliveryJob.objects.only(*JOB_FIELDS).filter(status__in=ACTIVE).order_by("created_at", "pk")
    return [_row(job) for job in jobs[:RUNNING_JOBS]]


def backend_health() -> list[BackendRow]:
    """Every registered backend with its cached health (no probe: the page never waits on SDNext)."""
    rows = []
    for backend in GenerationBackend.objects.only(*BACKEND_FIELDS).order_by("name"):
        if not backend.enabled:
            health = "disabled"
        else:
            health = {True: "healthy", False: "unhealthy", None: "unknown"}[backend.healthy]
        rows.append(
            BackendRow(
                name=backend.name,
                url=backend.url,
                health=health,
                last_error=backend.last_error or "",
                last_checked_at=backend.last_checked_at,
            )
        )
    return rows
