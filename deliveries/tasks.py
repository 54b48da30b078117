"""Celery tasks of the deliveries app: thin wrappers around ``deliveries.execution`` and ``deliveries.recovery``."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import worker_ready

from deliveries.execution import delivery_run
from deliveries.recovery import delivery_jobs_recover

logger = logging.getLogger("loraforge.deliveries")


@shared_task(
    bind=True,
    name="deliveries.run_delivery",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_delivery(self: Any, job_id: str) -> None:
    """Run the delivery job ``job_id``; the queue and time limits are set per job when it is enqueued."""
    delivery_run(job_id=job_id, worker=str(self.request.hostname or "worker"))


@shared_task(
    name="deliveries.recover_stale_jobs",
    queue="default",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    time_limit=300,
)
def recover_stale_jobs() -> None:
    """SPEC 6.2.6, every 60 s from beat and once when a worker starts."""
    for line in delivery_jobs_recover():
        logger.warning("Recovered delivery job: %s", line)


@worker_ready.connect
def recover_when_a_worker_starts(**kwargs: object) -> None:
    try:
        recover_stale_jobs.delay()
    except Exception:
        logger.warning("Could not queue delivery job recovery at worker start", exc_info=True)
