"""Celery tasks of the adapters app: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from adapters.scan_service import scan_run
from adapters.services import adapter_hash

SCAN_TIME_LIMIT = 24 * 3600  # SPEC 6.2.5: scans may run for a day


@shared_task(
    name="adapters.hash_adapter_file",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    time_limit=6 * 3600,
)
def hash_adapter_file(adapter_id: str) -> None:
    adapter_hash(adapter_id=adapter_id)


@shared_task(
    name="adapters.scan_library",
    queue="default",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=SCAN_TIME_LIMIT,
    time_limit=SCAN_TIME_LIMIT + 120,
)
def scan_library(job_id: str) -> None:
    """Run the scan job ``job_id`` (a BackgroundJob of kind ``scan``); see ``adapters.scan_service``."""
    scan_run(job_id=job_id)
