"""Reads of the deliveries app."""

from __future__ import annotations

from deliveries.models import DeliveryJob, DeliveryKind
from loraforge.models.jobs import JobStatus

ESTIMATE_SAMPLE = 20


def estimated_duration(job: DeliveryJob) -> float | None:
    """Mean duration (s) of the last 20 succeeded generations with the same width, height and steps (SPEC 6.5)."""
    params = job.params.get("generation_params", {}) if isinstance(job.params, dict) else {}
    keys = {name: params.get(name) for name in ("width", "height", "steps")}
    if any(not isinstance(value, int) for value in keys.values()):
        return None
    recent = (
        DeliveryJob.objects.filter(
            kind=DeliveryKind.GENERATION,
            status=JobStatus.SUCCEEDED,
            started_at__isnull=False,
            finished_at__isnull=False,
            params__generation_params__width=keys["width"],
            params__generation_params__height=keys["height"],
            params__generation_params__steps=keys["steps"],
        )
        .exclude(pk=job.pk)
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")[:ESTIMATE_SAMPLE]
    )
    durations = [(finished - started).total_seconds() for started, finished in recent if started and finished]
    return round(sum(durations) / len(durations), 2) if durations else None
