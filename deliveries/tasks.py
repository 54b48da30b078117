"""Celery tasks of the deliveries app: a thin wrapper around ``deliveries.execution`` (the core's
``loraforge.recover_jobs`` sweeps DeliveryJobs through the job registry)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from deliveries.execution import delivery_run


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
