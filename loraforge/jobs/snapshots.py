"""WebSocket snapshots of jobs (SPEC 6.5), every kind through one registry of providers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from loraforge.jobs.background import job_event_data
from loraforge.models import BackgroundJob
from loraforge.models.jobs import ACTIVE_STATUSES
from loraforge.progress import JOB_PROGRESS, envelope

SNAPSHOT_LIMIT = 50  # active jobs in the snapshot of a subscription to all jobs

# A provider answers "events for these job ids" (or, for None, "for the active jobs") as
# (created_at, envelope) pairs. BackgroundJobs are built in; the deliveries app registers its own
# provider (progress_update/generation_complete snapshots of DeliveryJobs) from its AppConfig.ready().
SnapshotProvider = Callable[[list[str] | None], list[tuple[datetime, dict[str, Any]]]]


def background_job_snapshots(job_ids: list[str] | None) -> list[tuple[datetime, dict[str, Any]]]:
    if job_ids is None:
        jobs = BackgroundJob.objects.filter(status__in=ACTIVE_STATUSES).order_by("-created_at")[:SNAPSHOT_LIMIT]
    else:
        jobs = BackgroundJob.objects.filter(pk__in=job_ids)
    return [(job.created_at, envelope(JOB_PROGRESS, job_event_data(job, snapshot=True))) for job in jobs]


_snapshot_providers: list[SnapshotProvider] = [background_job_snapshots]


def register_snapshot_provider(provider: SnapshotProvider) -> None:
    if provider not in _snapshot_providers:
        _snapshot_providers.append(provider)


def job_snapshots(job_ids: Iterable[str] | None) -> list[dict[str, Any]]:
    """Snapshot envelopes for existing jobs among ``job_ids``, or for at most 50 active jobs (``None``)."""
    wanted = None if job_ids is None else list(job_ids)
    if wanted == []:
        return []
    found: list[tuple[datetime, dict[str, Any]]] = []
    for provider in _snapshot_providers:
        found.extend(provider(wanted))
    found.sort(key=lambda pair: pair[0], reverse=True)
    events = [event for _created, event in found]
    return events[:SNAPSHOT_LIMIT] if wanted is None else events
