"""Cancelling a job of any kind (SPEC 6.2.4): bounded, idempotent, revoking the task of a job that had not started."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from loraforge.errors import Conflict
from loraforge.jobs.enqueue import task_revoke
from loraforge.models.jobs import JobRecord, JobStatus

CANCEL_ATTEMPTS = 5  # a status that keeps moving under the cancel is decided again at most this often

Job = TypeVar("Job", bound=JobRecord)


def not_cancellable(status: str) -> Conflict:
    return Conflict(f"Job cannot be cancelled in its current state ({status})")


def job_cancel_with(
    job: Job,
    *,
    cancel: Callable[[Job], bool],
    announce: Callable[[Job], None],
    refuse: Callable[[Job], Conflict | None] = lambda job: None,
    label: Callable[[Job], str] | None = None,
) -> Job:
    """``pending``/``running`` → ``cancelled`` through the kind's conditional ``cancel``; ``announce`` publishes
    the kind's events. Already cancelled: a no-op. Finished (or ``refuse`` says so): a 409 naming the status
    (``label``). A job cancelled while ``pending`` has its task revoked."""
    for _ in range(CANCEL_ATTEMPTS):
        if job.status == JobStatus.CANCELLED:
            return job
        refusal = not_cancellable(label(job) if label else job.status) if job.is_terminal else refuse(job)
        if refusal is not None:
            raise refusal
        was_pending = job.status == JobStatus.PENDING
        if cancel(job):
            if was_pending:
                task_revoke(job.celery_task_id, job_id=job.pk)
            announce(job)
            return job
        # the status moved meanwhile (the conditional write re-read it): decide again
    return job
