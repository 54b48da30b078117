"""Celery tasks of the core: the BackgroundJob sweeper (SPEC 6.2.6)."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready

from loraforge.jobs.recovery import background_jobs_recover
from loraforge.signals import send_process_started

logger = logging.getLogger("loraforge.jobs")


@shared_task(
    name="loraforge.recover_background_jobs",
    queue="default",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    time_limit=300,
)
def recover_background_jobs() -> None:
    """Fail running jobs whose worker was lost; re-queue pending jobs nobody took (every 60 s, from beat)."""
    for line in background_jobs_recover():
        logger.warning("Recovered job: %s", line)


@worker_ready.connect
def recover_when_a_worker_starts(**kwargs: object) -> None:
    """SPEC 6.2.6: the sweeper also runs once when a worker starts; start-up hooks (the default backend) too."""
    send_process_started("worker")
    try:
        recover_background_jobs.delay()
    except Exception:
        logger.warning("Could not queue job recovery at worker start", exc_info=True)
