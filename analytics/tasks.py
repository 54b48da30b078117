"""Celery tasks of analytics: thin wrappers around the resource-sample services, sent by beat by name
(``loraforge.celery_config.beat_schedule``)."""

from __future__ import annotations

from celery import shared_task

from analytics.services import resource_sample_record, resource_samples_prune
from loraforge.celery_config import PRUNE_TASK

RECORD_SAMPLE_TASK = "analytics.record_resource_sample"
PRUNE_SAMPLES_TASK = "analytics.prune_resource_samples"


@shared_task(
    name=RECORD_SAMPLE_TASK,
    queue="default",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=30,
    time_limit=60,
)
def record_resource_sample() -> int:
    """Record one ResourceSample of the process that runs it; returns its id."""
    return resource_sample_record().pk


@shared_task(name=PRUNE_SAMPLES_TASK, **PRUNE_TASK)
def prune_resource_samples() -> int:
    """Delete the samples past their retention; returns how many."""
    return resource_samples_prune()
