"""Running one delivery job inside a worker (SPEC 6.2.2, 6.2.3, 6.2.5): the idempotency rules every task
obeys, then the runner registered for the job's mode. Nothing here knows SDNext."""

from __future__ import annotations

import logging
import uuid

from celery.exceptions import SoftTimeLimitExceeded

from deliveries import events
from deliveries.models import DeliveryJob
from deliveries.runner_registry import runner_for
from loraforge.jobs.deadline import TIME_LIMIT_EXCEEDED, deadline_check
from loraforge.jobs.heartbeat import Ticker
from loraforge.models.jobs import JobStatus

logger = logging.getLogger("loraforge.deliveries")

UNEXPECTED_ERROR = "Unexpected error while running the job"


def delivery_fail(job: DeliveryJob, *, error: str, error_code: str, result: dict[str, object] | None = None) -> bool:
    """A conditional ``pending``/``running`` → ``failed`` write; the events follow only when it took effect."""
    failed = job.fail(error=error, error_code=error_code, result=result)
    if failed:
        events.publish_terminal(job)
    return failed


def delivery_run(*, job_id: uuid.UUID | str, worker: str) -> DeliveryJob | None:
    """The body of ``deliveries.run_delivery``. A job that is gone or terminal is left alone; a ``running`` job
    (a redelivered task) is left to its holder while its heartbeat is fresh, else recovered like an orphan."""
    job = DeliveryJob.objects.filter(pk=job_id).first()
    if job is None or job.is_terminal:
        return job
    if job.status == JobStatus.RUNNING:
        if not job.heartbeat_is_fresh():
            from deliveries.recovery import delivery_job_recover

            delivery_job_recover(job)
        return job
    runner = runner_for(job.mode)
    if runner is None:
        delivery_fail(job, error=f"No runner for delivery mode '{job.mode}'", error_code="no_runner")
        return job
    try:
        deadline_check()
        runner.run(job, worker=worker)
    except SoftTimeLimitExceeded:
        job.refresh_from_db()
        delivery_fail(job, error=TIME_LIMIT_EXCEEDED, error_code="task_timeout")
    except Exception:
        logger.exception("Delivery job %s failed unexpectedly", job.pk)
        job.refresh_from_db()
        delivery_fail(job, error=UNEXPECTED_ERROR, error_code="internal_error")
    return job


def heartbeat_ticker(job: DeliveryJob, *, interval: float = 5.0) -> Ticker:
    """Renews a running job's ``heartbeat_at`` every ``interval`` seconds while a blocking call runs (a slow HTTP
    delivery must not look orphaned to recovery); stops once the job left ``running``."""
    return Ticker(
        lambda: DeliveryJob(pk=job.pk, status=JobStatus.RUNNING).heartbeat(),
        interval=interval,
        name=f"delivery-heartbeat-{job.pk}",
    )
