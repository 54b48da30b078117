"""WebSocket snapshots of jobs (SPEC 6.5) for every registered kind of job (``loraforge.jobs.registry``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from loraforge.jobs.background import job_event_data
from loraforge.jobs.registry import JobKind, job_kinds
from loraforge.models import BackgroundJob
from loraforge.models.jobs import ACTIVE_STATUSES
from loraforge.progress import JOB_PROGRESS, envelope

SNAPSHOT_LIMIT = 50  # active jobs in the snapshot of a subscription to all jobs


def background_job_snapshot_events(job: BackgroundJob) -> list[dict[str, Any]]:
    return [envelope(JOB_PROGRESS, job_event_data(job, snapshot=True))]


def _snapshots_of(kind: JobKind, job_ids: list[str] | None) -> list[tuple[datetime, dict[str, Any]]]:
    rows = kind.model._default_manager
    if job_ids is None:
        jobs = list(rows.filter(status__in=ACTIVE_STATUSES).order_by("-created_at")[:SNAPSHOT_LIMIT])
    else:
        jobs = list(rows.filter(pk__in=job_ids))
    return [(job.created_at, event) for job in jobs for event in kind.snapshot_events(job)]


def job_snapshots(job_ids: Iterable[str] | None) -> list[dict[str, Any]]:
    """Snapshot envelopes for existing jobs among ``job_ids``, or for at most 50 active jobs (``None``), newest
    first, over every registered kind of job."""
    wanted = None if job_ids is None else list(job_ids)
    if wanted == []:
        return []
    found = [pair for kind in job_kinds() for pair in _snapshots_of(kind, wanted)]
    found.sort(key=lambda pair: pair[0], reverse=True)
    events = [event for _created, event in found]
    return events[:SNAPSHOT_LIMIT] if wanted is None else events
