"""Celery tasks of the core: the recovery sweep over every registered kind of job (SPEC 6.2.6)."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready

from loraforge.jobs.enqueue import task_send
from loraforge.jobs.recovery import jobs_recover
from loraforge.signals import send_process_started

logger = logging.getLogger("loraforge.jobs")

RECOVER_TASK = "loraforge.recover_jobs"


@shared_task(
    name=RECOVER_TASK,
    queue="default",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    time_limit=300,
)
def recover_jobs() -> None:
    """Every kind's sweep: stale running jobs re-queued or failed, pending jobs nobody took sent again (every
    60 s from beat, and once when a worker starts)."""
    for line in jobs_recover():
        logger.warning("Recovered job: %s", line)


@worker_ready.connect
def recover_when_a_worker_starts(**kwargs: object) -> None:
    """SPEC 6.2.6: the sweep also runs once when a worker starts; start-up hooks (the default backend) too."""
    send_process_started("worker")
    try:
        task_send(RECOVER_TASK, args=[], queue="default")
    except Exception:
        logger.warning("Could not queue job recovery at worker start", exc_info=True)
