"""Recovery of orphaned delivery jobs (SPEC 6.2.6): stale ``running`` jobs are re-queued or failed, ``pending``
jobs nobody took are sent again. Run by beat every 60 s, once when a worker starts, and by ``recover_jobs``."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from deliveries import events
from deliveries.models import DeliveryJob
from deliveries.runner_registry import runner_for
from deliveries.services import delivery_job_enqueue
from loraforge.jobs.recovery import pending_cutoff
from loraforge.models.jobs import JobStatus, stale_running

logger = logging.getLogger("loraforge.deliveries")


def worker_lost_error(attempts: int) -> str:
    return f"Worker lost while running the job; giving up after {attempts} attempt{'' if attempts == 1 else 's'}"


def _failed_line(job: DeliveryJob, attempts: int) -> str:
    return f"{job.pk} running → failed ({worker_lost_error(attempts)})"


def _release(job: DeliveryJob) -> None:
    runner = runner_for(job.mode)
    if runner is None:
        return
    try:
        runner.release(job)
    except Exception:
        logger.warning("Could not release the resources of job %s", job.pk, exc_info=True)


def delivery_job_recover(job: DeliveryJob, *, dry_run: bool = False) -> str | None:
    """One stale ``running`` job: release its backend, then ``pending`` (attempts left) or ``failed``
    (``worker_lost``). Every write is conditional on the job still being stale, so a live worker wins."""
    now = timezone.now()
    if not DeliveryJob.objects.filter(stale_running(now), pk=job.pk).exists():
        return None
    attempts = job.attempts
    retry = attempts < settings.LORAFORGE_JOB_MAX_ATTEMPTS
    if dry_run:
        return f"{job.pk} running → pending (attempt {attempts + 1})" if retry else _failed_line(job, attempts)
    _release(job)
    if retry:
        if not job.requeue(message=f"Worker lost; re-queued (attempt {attempts + 1})", now=now):
            return None
        events.publish_progress(job)
        delivery_job_enqueue(job)
        return f"{job.pk} running → pending (attempt {attempts + 1})"
    updated = DeliveryJob.objects.filter(stale_running(now), pk=job.pk).update(
        status=JobStatus.FAILED,
        error=worker_lost_error(attempts),
        error_code="worker_lost",
        message=worker_lost_error(attempts)[:500],
        eta_seconds=None,
        finished_at=now,
        updated_at=now,
    )
    if not updated:
        return None
    job.refresh_from_db()
    events.publish_terminal(job)
    return _failed_line(job, attempts)


def delivery_jobs_recover(*, dry_run: bool = False, requeue_all_pending: bool = False) -> list[str]:
    """Every stale ``running`` job, then every ``pending`` job not (re-)enqueued for 300 s (or all of them
    after an in-memory broker started empty). One line per affected job."""
    now = timezone.now()
    lines: list[str] = []
    for job in DeliveryJob.objects.filter(stale_running(now)).order_by("created_at"):
        line = delivery_job_recover(job, dry_run=dry_run)
        if line:
            lines.append(line)
    pending = DeliveryJob.objects.filter(status=JobStatus.PENDING)
    if not requeue_all_pending:
        cutoff = pending_cutoff(now)
        pending = pending.filter(Q(enqueued_at__lt=cutoff) | Q(enqueued_at__isnull=True, created_at__lt=cutoff))
    for job in pending.order_by("created_at"):
        if dry_run or delivery_job_enqueue(job):
            lines.append(f"{job.pk} pending → re-queued")
    return lines
