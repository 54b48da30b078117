"""Queue numbers of the status (SPEC 5.10, 6.9) and the dashboard, and the queue's ETA, each read through an index or
the rollups: none of them scans the jobs' history."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q, Sum
from django.utils import timezone

from analytics.models import JobHourRollup
from deliveries.models import DeliveryJob, DeliveryKind
from loraforge.models.jobs import JobStatus

OTHER_KINDS = [kind for kind in DeliveryKind.values if kind != DeliveryKind.GENERATION]  # an equality the index takes
ETA_HISTORY = 20  # succeeded generations the mean duration is taken over


def queue_activity() -> dict[str, int]:
    """``{"active", "pending", "running", "failed_last_hour", "pending_generations"}`` in one aggregate over the
    active jobs and the last hour's failures, both read through an index (``(status, created_at)`` and
    ``(status, finished_at)``): it does not grow with the history."""
    hour_ago = timezone.now() - timedelta(hours=1)
    recent_failure = Q(status=JobStatus.FAILED, finished_at__gte=hour_ago)
    active = Q(status__in=(JobStatus.PENDING, JobStatus.RUNNING))
    counts = DeliveryJob.objects.filter(active | recent_failure).aggregate(
        pending=Count("pk", filter=Q(status=JobStatus.PENDING)),
        running=Count("pk", filter=Q(status=JobStatus.RUNNING)),
        failed_last_hour=Count("pk", filter=recent_failure),
        pending_generations=Count("pk", filter=Q(status=JobStatus.PENDING, kind=DeliveryKind.GENERATION)),
    )
    numbers = {name: int(value or 0) for name, value in counts.items()}
    numbers["active"] = numbers["pending"] + numbers["running"]
    return numbers


def _history() -> dict[str, int]:
    """Every delivery ever and the failed ones: generations from the hourly rollups the database keeps exact (a
    few rows per hour of history, not one per job), other deliveries counted through the ``kind`` index."""
    generations = JobHourRollup.objects.aggregate(total=Sum("total"), failed=Sum("failed"))
    others = DeliveryJob.objects.filter(kind__in=OTHER_KINDS).aggregate(
        total=Count("pk"), failed=Count("pk", filter=Q(status=JobStatus.FAILED))
    )
    return {name: int(generations[name] or 0) + int(others[name] or 0) for name in ("total", "failed")}


def queue_numbers() -> dict[str, int]:
    """``{"total", "active", "pending", "running", "failed", "failed_last_hour"}`` plus ``pending_generations``."""
    return {**_history(), **queue_activity()}


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
