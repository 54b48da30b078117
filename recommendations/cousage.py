"""Co-usage (SPEC 6.7.2): ``n_ab / sqrt(n_a·n_b)`` over the succeeded generation jobs of the last 180 days, from
the jobs' adapter links."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, QuerySet
from django.utils import timezone

from deliveries.models import DeliveryJobAdapter, DeliveryKind
from loraforge.models.jobs import JobStatus
from recommendations.scoring import CO_USAGE_DAYS


@dataclass(frozen=True)
class CoUsage:
    score: float
    jobs: int  # n_ab: succeeded jobs that used both


def _links() -> QuerySet[DeliveryJobAdapter]:
    cutoff = timezone.now() - timedelta(days=CO_USAGE_DAYS)
    return DeliveryJobAdapter.objects.filter(
        adapter__isnull=False,
        job__kind=DeliveryKind.GENERATION,
        job__status=JobStatus.SUCCEEDED,
        job__created_at__gte=cutoff,
    )


def _job_counts(adapter_ids: Iterable[str]) -> dict[str, int]:
    rows = (
        _links()
        .filter(adapter_id__in=list(adapter_ids))
        .values("adapter_id")
        .annotate(jobs=Count("job_id", distinct=True))
        .values_list("adapter_id", "jobs")
    )
    return {str(adapter_id): jobs for adapter_id, jobs in rows}


def co_usage_with(adapter_id: str) -> dict[str, CoUsage]:
    """The adapters used with ``adapter_id`` and their co-usage (only those with a score above 0)."""
    jobs_of_target = _links().filter(adapter_id=adapter_id).values("job_id")
    pairs = dict(
        _links()
        .filter(job_id__in=jobs_of_target)
        .exclude(adapter_id=adapter_id)
        .values("adapter_id")
        .annotate(jobs=Count("job_id", distinct=True))
        .values_list("adapter_id", "jobs")
    )
    if not pairs:
        return {}
    counts = _job_counts([adapter_id, *(str(other) for other in pairs)])
    n_a = counts.get(str(adapter_id), 0)
    result: dict[str, CoUsage] = {}
    for other, n_ab in pairs.items():
        n_b = counts.get(str(other), 0)
        if n_a and n_b and n_ab:
            result[str(other)] = CoUsage(score=n_ab / math.sqrt(n_a * n_b), jobs=n_ab)
    return result
