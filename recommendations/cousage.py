"""Co-usage (SPEC 6.7.2): ``n_ab / sqrt(n_a*n_b)`` over the succeeded generation jobs of the last 180 days, from
the jobs' adapter links. One query per target (it runs on every similar and works-well-with request)."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from adapters.models import Adapter
from deliveries.models import DeliveryJob, DeliveryJobAdapter, DeliveryKind
from loraforge.models.jobs import JobStatus
from recommendations.scoring import CO_USAGE_DAYS


@dataclass(frozen=True)
class CoUsage:
    score: float
    jobs: int  # n_ab: succeeded jobs that used both


def _sql() -> str:
    links, jobs = DeliveryJobAdapter._meta.db_table, DeliveryJob._meta.db_table
    return f"""
        WITH links AS (
            SELECT DISTINCT l.job_id, l.adapter_id FROM {links} l JOIN {jobs} j ON j.id = l.job_id
            WHERE l.adapter_id IS NOT NULL AND j.kind = %s AND j.status = %s AND j.created_at >= %s
        ),
        target_jobs AS (SELECT job_id FROM links WHERE adapter_id = %s),
        pairs AS (
            SELECT adapter_id, COUNT(*) AS n_ab FROM links
            WHERE job_id IN (SELECT job_id FROM target_jobs) AND adapter_id <> %s GROUP BY adapter_id
        ),
        counts AS (
            SELECT adapter_id, COUNT(*) AS n FROM links
            WHERE adapter_id IN (SELECT adapter_id FROM pairs) GROUP BY adapter_id
        )
        SELECT p.adapter_id, p.n_ab, c.n, (SELECT COUNT(*) FROM target_jobs)
        FROM pairs p JOIN counts c ON c.adapter_id = p.adapter_id
    """  # noqa: S608 - table names from the models, values as parameters


def co_usage_with(adapter_id: str) -> dict[str, CoUsage]:
    """The adapters used with ``adapter_id`` and their co-usage (only those with a score above 0)."""
    target = Adapter._meta.pk.get_db_prep_value(uuid.UUID(str(adapter_id)), connection)
    cutoff = timezone.now() - timedelta(days=CO_USAGE_DAYS)
    params = [DeliveryKind.GENERATION.value, JobStatus.SUCCEEDED.value, cutoff, target, target]
    with connection.cursor() as cursor:
        cursor.execute(_sql(), params)
        rows = cursor.fetchall()
    result: dict[str, CoUsage] = {}
    for other, n_ab, n_b, n_a in rows:
        if n_a and n_b and n_ab:
            result[str(uuid.UUID(str(other)))] = CoUsage(score=n_ab / math.sqrt(n_a * n_b), jobs=int(n_ab))
    return result
