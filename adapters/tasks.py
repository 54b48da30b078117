"""Celery tasks of the adapters app: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from adapters.services import adapter_hash


@shared_task(
    name="adapters.hash_adapter_file",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    time_limit=6 * 3600,
)
def hash_adapter_file(adapter_id: str) -> None:
    adapter_hash(adapter_id=adapter_id)
