"""BackgroundJob services: creation, state changes with their ``job_progress`` events, and cancel (SPEC 5.11, 6.2,
6.5). Every state change goes through the model's conditional writes; the event is published only by whoever
performed the write, so a job that some other writer already finished publishes nothing more.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from loraforge.errors import Conflict
from loraforge.jobs.cancel import job_cancel_with, not_cancellable
from loraforge.jobs.enqueue import QUEUE_UNAVAILABLE, task_send
from loraforge.models import BackgroundJob
from loraforge.models.jobs import BackgroundJobKind, JobStatus
from loraforge.progress import JOB_PROGRESS, job_progress_data, publish
from loraforge.signals import send_background_job_stopped

logger = logging.getLogger("loraforge.jobs")

JOB_CANCELLED = "Job cancelled"
# Kinds whose running jobs stop cooperatively; the others (import, restore, export) only while pending.
CANCELLABLE_WHILE_RUNNING = frozenset({BackgroundJobKind.SCAN, BackgroundJobKind.EMBEDDINGS, BackgroundJobKind.BACKUP})
# The task that runs each kind, by name (the core imports no app): enqueue and recovery send it.
JOB_TASKS: dict[str, str] = {
    BackgroundJobKind.SCAN: "adapters.scan_library",
    BackgroundJobKind.EMBEDDINGS: "recommendations.compute_embeddings",
    BackgroundJobKind.BACKUP: "backups.run_backup",
    BackgroundJobKind.RESTORE: "backups.run_restore",
}
# Result keys left out of events (SPEC 6.5: scan reports without their items).
EVENT_RESULT_OMITS: dict[str, tuple[str, ...]] = {BackgroundJobKind.SCAN: ("items", "items_truncated")}


# --- events ---------------------------------------------------------------------------------------


def job_event_data(job: BackgroundJob, *, snapshot: bool = False) -> dict[str, Any]:
    """The ``data`` of a BackgroundJob's ``job_progress`` event (scan reports without their items)."""
    return job_progress_data(job, kind=job.kind, snapshot=snapshot, omit=EVENT_RESULT_OMITS.get(job.kind, ()))


def job_publish(job: BackgroundJob) -> None:
    publish(job.pk, JOB_PROGRESS, job_event_data(job))


# --- creation and state changes -------------------------------------------------------------------


def background_job_create(*, kind: str, params: dict[str, Any], created_via: str) -> BackgroundJob:
    """A ``pending`` job; its event is published once the surrounding transaction commits."""
    job = BackgroundJob.objects.create(kind=kind, params=params, created_via=created_via)
    snapshot = job_event_data(job)
    transaction.on_commit(lambda: publish(job.pk, JOB_PROGRESS, snapshot))
    return job


def job_enqueue(job: BackgroundJob) -> bool:
    """Send the kind's task (``JOB_TASKS``); when the broker refuses, the job fails with "Task queue unavailable"."""
    try:
        task_id = task_send(JOB_TASKS[job.kind], args=[str(job.pk)])
    except Exception:
        logger.exception("Could not queue %s job %s", job.kind, job.pk)
        if job.fail(QUEUE_UNAVAILABLE):
            job_publish(job)
        return False
    BackgroundJob.objects.filter(pk=job.pk).update(celery_task_id=task_id)
    job.celery_task_id = task_id
    return True


def background_job_take(*, job_id: Any, kind: str) -> tuple[BackgroundJob | None, bool]:
    """The job a task was sent for, and whether this call started it (``pending`` → ``running``). A job already
    running is a redelivered task's: recovered when its heartbeat is stale (its worker died), else left alone."""
    from loraforge.jobs.recovery import job_recover_if_stale  # recovery imports this module

    job = BackgroundJob.objects.filter(pk=job_id, kind=kind).first()
    if job is None:
        return None, False
    if job.status == JobStatus.RUNNING:
        job_recover_if_stale(job)
        return job, False
    return job, job_start(job)


def job_start(job: BackgroundJob) -> bool:
    started = job.start()
    if started:
        job_publish(job)
    return started


def job_succeed(job: BackgroundJob, result: dict[str, Any] | None, message: str = "") -> bool:
    done = job.succeed(result, message=message)
    if done:
        job_publish(job)
    return done


def job_fail(job: BackgroundJob, error: str, result: dict[str, Any] | None = None) -> bool:
    failed = job.fail(error, result=result)
    if failed:
        job_publish(job)
    return failed


def job_keep_result(job: BackgroundJob, result: dict[str, Any]) -> bool:
    """Attach the partial report of a job cancelled while it ran (its status does not change)."""
    kept = bool(
        BackgroundJob.objects.filter(pk=job.pk, status=JobStatus.CANCELLED, result__isnull=True).update(result=result)
    )
    job.refresh_from_db()
    if kept:
        job_publish(job)
    return kept


def _refuse_running(job: BackgroundJob) -> Conflict | None:
    if job.status == JobStatus.RUNNING and job.kind not in CANCELLABLE_WHILE_RUNNING:
        return not_cancellable(job.status)
    return None


def job_cancel(*, job: BackgroundJob) -> BackgroundJob:
    """``pending``/``running`` → ``cancelled`` (cooperative: the worker stops at its next check)."""
    return job_cancel_with(job, cancel=lambda job: job.cancel(), announce=_announce_cancelled, refuse=_refuse_running)


def _announce_cancelled(job: BackgroundJob) -> None:
    job_publish(job)
    send_background_job_stopped(job)
