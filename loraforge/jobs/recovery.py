"""Recovery of orphaned jobs (SPEC 6.2.6), every kind through one registry: stale ``running`` BackgroundJobs fail
(``WORKER_LOST``), ``pending`` ones nobody took are sent again; each app registers its own kind's sweeper."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from loraforge.jobs.background import JOB_TASKS, job_enqueue, job_publish
from loraforge.jobs.registry import job_kinds
from loraforge.models import BackgroundJob
from loraforge.models.jobs import JobStatus, stale_running
from loraforge.signals import send_background_job_stopped

WORKER_LOST = "Worker lost while running the job"
PENDING_REQUEUE_SECONDS = 300  # a pending job nobody took is sent again after this long


def pending_cutoff(now: datetime) -> datetime:
    return now - timedelta(seconds=PENDING_REQUEUE_SECONDS)


def _fail_if_stale(job_id: uuid.UUID, now: datetime) -> BackgroundJob | None:
    """One conditional write: a job whose heartbeat was renewed since it was selected is left alone."""
    updated = (
        BackgroundJob.objects.filter(stale_running(now), pk=job_id)
        .update(status=JobStatus.FAILED, error=WORKER_LOST, finished_at=now)
    )  # fmt: skip
    if not updated:
        return None
    job = BackgroundJob.objects.get(pk=job_id)
    job_publish(job)
    send_background_job_stopped(job)
    return job


def job_recover_if_stale(job: BackgroundJob) -> bool:
    """A redelivered task finding its job ``running``: fail it when its heartbeat is stale, else leave it."""
    return _fail_if_stale(job.pk, timezone.now()) is not None


def _requeue(job: BackgroundJob, now: datetime) -> bool:
    if job.kind not in JOB_TASKS:
        return False
    # heartbeat_at of a pending job records its last (re-)enqueue, so a job is re-sent at most every 300 s.
    if not BackgroundJob.objects.filter(pk=job.pk, status=JobStatus.PENDING).update(heartbeat_at=now):
        return False
    return job_enqueue(job)


def background_jobs_recover(*, dry_run: bool = False, requeue_all_pending: bool = False) -> list[str]:
    """Fail running jobs with a stale heartbeat; re-enqueue pending ones nobody took (or all of them, after an
    in-memory broker started empty). Returns one line per affected job."""
    now = timezone.now()
    lines: list[str] = []
    for job_id in BackgroundJob.objects.filter(stale_running(now)).values_list("pk", flat=True):
        if dry_run or _fail_if_stale(job_id, now) is not None:
            lines.append(f"{job_id} running → failed ({WORKER_LOST})")
    pending = BackgroundJob.objects.filter(status=JobStatus.PENDING, kind__in=list(JOB_TASKS))
    if not requeue_all_pending:
        cutoff = pending_cutoff(now)
        pending = pending.filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff))
    for job in pending:
        if dry_run or _requeue(job, now):
            lines.append(f"{job.pk} pending → re-queued")
    return lines


def jobs_recover(*, dry_run: bool = False, requeue_all_pending: bool = False) -> list[str]:
    """Every registered kind's sweep (``BackgroundJob`` first); one line per job it moved."""
    lines: list[str] = []
    for kind in job_kinds():
        lines.extend(kind.recover(dry_run=dry_run, requeue_all_pending=requeue_all_pending))
    return lines
