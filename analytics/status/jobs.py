"""Queue numbers of the status (SPEC 5.10, 6.9): deliveries by state in one aggregate, and the queue's ETA."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from deliveries.models import DeliveryJob, DeliveryKind
from loraforge.models.jobs import JobStatus

ETA_HISTORY = 20  # succeeded generations the mean duration is taken over


def queue_numbers() -> dict[str, Any]:
    """``{"total", "active", "pending", "running", "failed", "failed_last_hour"}`` plus ``pending_generations``."""
    hour_ago = timezone.now() - timedelta(hours=1)
    counts = DeliveryJob.objects.aggregate(
        total=Count("pk"),
        pending=Count("pk", filter=Q(status=JobStatus.PENDING)),
        running=Count("pk", filter=Q(status=JobStatus.RUNNING)),
        failed=Count("pk", filter=Q(status=JobStatus.FAILED)),
        failed_last_hour=Count("pk", filter=Q(status=JobStatus.FAILED, finished_at__gte=hour_ago)),
        pending_generations=Count("pk", filter=Q(status=JobStatus.PENDING, kind=DeliveryKind.GENERATION)),
    )
    numbers = {name: int(value or 0) for name, value in counts.items()}
    numbers["active"] = numbers["pending"] + numbers["running"]
    return numbers


def mean_generation_seconds() -> float | None:
    """Mean duration of the last ``ETA_HISTORY`` succeeded generations (None without history)."""
    rows = (
        DeliveryJob.objects.filter(
            kind=DeliveryKind.GENERATION,
            status=JobStatus.SUCCEEDED,
            started_at__isnull=False,
            finished_at__isnull=False,
        )
        .order_by("-finished_at", "-id")
        .values_list("started_at", "finished_at")[:ETA_HISTORY]
    )
    durations = [max(0.0, (finished - started).total_seconds()) for started, finished in rows if started and finished]
    return sum(durations) / len(durations) if durations else None


def queue_eta_seconds(*, pending_generations: int, enabled_backends: int) -> float | None:
    """Pending generations * mean duration / max(1, enabled backends); None without history."""
    mean = mean_generation_seconds()
    if mean is None:
        return None
    return round(pending_generations * mean / max(1, enabled_backends), 2)
