"""Running one delivery job inside a worker (SPEC 6.2.2, 6.2.3, 6.2.5): the idempotency rules every task
obeys, then the runner registered for the job's mode. Nothing here knows SDNext."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection
from django.utils import timezone

from deliveries import events
from deliveries.models import DeliveryJob
from deliveries.runners import runner_for
from loraforge.models.jobs import JobStatus

logger = logging.getLogger("loraforge.deliveries")

TIME_LIMIT_EXCEEDED = "Job exceeded its time limit"
UNEXPECTED_ERROR = "Unexpected error while running the job"


def delivery_fail(job: DeliveryJob, *, error: str, error_code: str, result: dict[str, object] | None = None) -> bool:
    """A conditional ``pending``/``running`` → ``failed`` write; the events follow only when it took effect."""
    failed = job.fail(error=error, error_code=error_code, result=result)
    if failed:
        events.publish_terminal(job)
    return failed


def _heartbeat_is_fresh(job: DeliveryJob) -> bool:
    beat = job.heartbeat_at or job.started_at
    if beat is None:
        return False
    return timezone.now() - beat < timedelta(seconds=settings.LORAFORGE_JOB_STALE_SECONDS)


def delivery_run(*, job_id: uuid.UUID | str, worker: str) -> DeliveryJob | None:
    """The body of ``deliveries.run_delivery``. A job that is gone or terminal is left alone; a ``running`` job
    (a redelivered task) is left to its holder while its heartbeat is fresh, else recovered like an orphan."""
    job = DeliveryJob.objects.filter(pk=job_id).first()
    if job is None or job.is_terminal:
        return job
    if job.status == JobStatus.RUNNING:
        if not _heartbeat_is_fresh(job):
            from deliveries.recovery import delivery_job_recover

            delivery_job_recover(job)
        return job
    runner = runner_for(job.mode)
    if runner is None:
        delivery_fail(job, error=f"No runner for delivery mode '{job.mode}'", error_code="no_runner")
        return job
    try:
        runner.run(job, worker=worker)
    except SoftTimeLimitExceeded:
        job.refresh_from_db()
        delivery_fail(job, error=TIME_LIMIT_EXCEEDED, error_code="task_timeout")
    except Exception:
        logger.exception("Delivery job %s failed unexpectedly", job.pk)
        job.refresh_from_db()
        delivery_fail(job, error=UNEXPECTED_ERROR, error_code="internal_error")
    return job


class Heartbeat:
    """Renews a running job's ``heartbeat_at`` every ``interval`` seconds in a thread while a blocking call
    runs (a slow HTTP delivery must not look orphaned to recovery)."""

    def __init__(self, job: DeliveryJob, *, interval: float = 5.0) -> None:
        self._job_id = job.pk
        self._interval = interval
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"delivery-heartbeat-{job.pk}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._halt.set()
        self._thread.join(self._interval + 1)

    def _beat(self) -> None:
        try:
            while not self._halt.wait(self._interval):
                row = DeliveryJob(pk=self._job_id, status=JobStatus.RUNNING)
                try:
                    if not row.heartbeat():
                        return
                except Exception:
                    logger.warning("Could not renew the heartbeat of job %s", self._job_id, exc_info=True)
        finally:
            connection.close()
