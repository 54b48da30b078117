"""Co-usage (SPEC 6.7.2): ``n_ab / sqrt(n_a*n_b)`` over the succeeded generation jobs of the last 180 days, from
the jobs' adapter links. One query per request: the target of similar and works-well-with, or for-prompt's active
adapters together.

Its cost follows the target's use, not the history's size: the target's jobs and their other adapters are found
through the links' indexes, and each partner's own count ``n_b`` is summed from the analytics rollups (succeeded
jobs per adapter and UTC day, kept exact by database triggers) instead of counted from every link. So the window
starts at the beginning of a UTC day: the jobs created on or after the day 180 days ago (docs/DECISIONS.md).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection
from django.utils import timezone

from adapters.models import Adapter
from analytics.models import AdapterDayRollup
from deliveries.models import DeliveryJob, DeliveryJobAdapter, DeliveryKind
from loraforge.models.jobs import JobStatus
from recommendations.scoring import CO_USAGE_DAYS


@dataclass(frozen=True)
class CoUsage:
    score: float
    jobs: int  # n_ab: succeeded jobs that used both


def _sql(targets: int) -> str:
    links, jobs, days = DeliveryJobAdapter._meta.db_table, DeliveryJob._meta.db_table, AdapterDayRollup._meta.db_table
    marks = ", ".join(["%s"] * targets)
    return f"""
        WITH target_jobs AS (
            SELECT DISTINCT l.adapter_id AS target, l.job_id FROM {links} l JOIN {jobs} j ON j.id = l.job_id
            WHERE l.adapter_id IN ({marks}) AND j.kind = %s AND j.status = %s AND j.created_at >= %s
        ),
        pairs AS (
            SELECT t.target, l.adapter_id, COUNT(DISTINCT l.job_id) AS n_ab
            FROM target_jobs t JOIN {links} l ON l.job_id = t.job_id
            WHERE l.adapter_id <> t.target GROUP BY t.target, l.adapter_id
        ),
        target_counts AS (SELECT target, COUNT(*) AS n FROM target_jobs GROUP BY target),
        counts AS (
            SELECT r.adapter_id, SUM(r.succeeded) AS n FROM {days} r
            WHERE r.adapter_id IN (SELECT adapter_id FROM pairs) AND r.bucket >= %s GROUP BY r.adapter_id
        )
        SELECT p.target, p.adapter_id, p.n_ab, c.n, a.n
        FROM pairs p JOIN counts c ON c.adapter_id = p.adapter_id JOIN target_counts a ON a.target = p.target
    """  # noqa: S608 - table names from the models, values as parameters


def window_start(now: datetime) -> date:
    """The first UTC day of the co-usage window: the day ``CO_USAGE_DAYS`` days before ``now``."""
    return (now.astimezone(UTC) - timedelta(days=CO_USAGE_DAYS)).date()


def co_usage_with(adapter_id: str) -> dict[str, CoUsage]:
    """The adapters used with ``adapter_id`` and their co-usage (only those with a score above 0)."""
    return co_usage_of([adapter_id]).get(str(uuid.UUID(str(adapter_id))), {})


def co_usage_of(adapter_ids: Sequence[str]) -> dict[str, dict[str, CoUsage]]:
    """``co_usage_with`` of several adapters in one query (for-prompt's active adapters): each partner's own count
    is read once, whichever targets share it. Keys are canonical UUID strings; an adapter without co-usage is
    absent."""
    targets = list(dict.fromkeys(uuid.UUID(str(adapter_id)) for adapter_id in adapter_ids))
    if not targets:
        return {}
    key = Adapter._meta.pk
    first_day = window_start(timezone.now())
    start = DeliveryJob._meta.get_field("created_at").get_db_prep_value(
        datetime.combine(first_day, time(0), tzinfo=UTC), connection
    )
    day = AdapterDayRollup._meta.get_field("bucket").get_db_prep_value(first_day, connection)
    params = [
        *(key.get_db_prep_value(target, connection) for target in targets),
        DeliveryKind.GENERATION.value, JobStatus.SUCCEEDED.value, start, day,
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(_sql(len(targets)), params)
        rows = cursor.fetchall()
    result: dict[str, dict[str, CoUsage]] = {}
    for target, other, n_ab, n_b, n_a in rows:
        if n_a and n_b and n_ab:
            usage = CoUsage(score=n_ab / math.sqrt(n_a * n_b), jobs=int(n_ab))
            result.setdefault(str(uuid.UUID(str(target))), {})[str(uuid.UUID(str(other)))] = usage
    return result
