"""Co-usage read from the database in one query: the targets' jobs and their partners through the links' indexes,
and each partner's own count of jobs (``n_b``).

``n_b`` is what makes the query cost follow the history's size: counted from the links, it reads every job each
partner was in. An app that keeps succeeded generation jobs per adapter and UTC day exact (each job once, links
without an adapter not counted) may register that table in its ``AppConfig.ready()`` (``day_counts_register``):
``analytics`` registers its day rollups, so ``n_b`` is a sum over at most 180 rows per partner. This app never
imports the one that registers (STYLE: nothing imports ``analytics``), and answers the same without it.
"""

# ruff: noqa: S608 - table and column names from the models or a registration, values as parameters

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from django.db import connection
from django.db.models import DateField

from adapters.models import Adapter
from deliveries.models import DeliveryJob, DeliveryJobAdapter, DeliveryKind
from loraforge.models.jobs import JobStatus

Row = tuple[Any, Any, int, int, int]  # target, other, n_ab, n_b, n_a


@dataclass(frozen=True)
class DayCounts:
    """A table of succeeded generation jobs per adapter and UTC day, and its columns."""

    table: str
    adapter: str
    day: str
    succeeded: str


_day_counts: DayCounts | None = None


def day_counts_register(counts: DayCounts | None) -> None:
    """Use ``counts`` for ``n_b`` (None: count from the links)."""
    global _day_counts
    _day_counts = counts


def day_counts_registered() -> DayCounts | None:
    return _day_counts


def _sql(targets: int, counts: DayCounts | None) -> str:
    links, jobs = DeliveryJobAdapter._meta.db_table, DeliveryJob._meta.db_table
    marks = ", ".join(["%s"] * targets)
    if counts is None:
        partner_counts = f"""
            SELECT l.adapter_id, COUNT(DISTINCT l.job_id) AS n FROM {links} l JOIN {jobs} j ON j.id = l.job_id
            WHERE l.adapter_id IN (SELECT adapter_id FROM pairs) AND j.kind = %s AND j.status = %s
              AND j.created_at >= %s
            GROUP BY l.adapter_id"""
    else:
        partner_counts = f"""
            SELECT r.{counts.adapter} AS adapter_id, SUM(r.{counts.succeeded}) AS n FROM {counts.table} r
            WHERE r.{counts.adapter} IN (SELECT adapter_id FROM pairs) AND r.{counts.day} >= %s
            GROUP BY r.{counts.adapter}"""
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
        counts AS ({partner_counts}
        )
        SELECT p.target, p.adapter_id, p.n_ab, c.n, a.n
        FROM pairs p JOIN counts c ON c.adapter_id = p.adapter_id JOIN target_counts a ON a.target = p.target
    """


def window_first_instant(first_day: date) -> Any:
    """The window's first instant as the database takes ``created_at``."""
    return DeliveryJob._meta.get_field("created_at").get_db_prep_value(
        datetime.combine(first_day, time(0), tzinfo=UTC), connection
    )


def co_usage_rows(targets: list[str], first_day: date) -> list[Row]:
    """``(target, other, n_ab, n_b, n_a)`` for the jobs created on or after ``first_day``."""
    counts = _day_counts
    key = Adapter._meta.pk
    start = window_first_instant(first_day)
    job_filter = [DeliveryKind.GENERATION.value, JobStatus.SUCCEEDED.value, start]
    partner_params = job_filter if counts is None else [DateField().get_db_prep_value(first_day, connection)]
    params = [*(key.get_db_prep_value(uuid.UUID(target), connection) for target in targets), *job_filter]
    with connection.cursor() as cursor:
        cursor.execute(_sql(len(targets), counts), [*params, *partner_params])
        return cursor.fetchall()
