"""Celery tasks of the recommendations app: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from loraforge.celery_config import PRUNE_TASK

EMBEDDINGS_TIME_LIMIT = 6 * 3600
PRUNE_USAGE_CHANGES_TASK = "recommendations.prune_usage_changes"


@shared_task(
    name="recommendations.compute_embeddings",
    queue="default",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=EMBEDDINGS_TIME_LIMIT,
    time_limit=EMBEDDINGS_TIME_LIMIT + 120,
)
def compute_embeddings(job_id: str | None = None) -> None:
    """Run the embeddings job ``job_id``; without one, embed every adapter whose vector is missing or stale (the
    debounced sweep after adapter writes)."""
    from recommendations.services.embeddings import embeddings_job_run, embeddings_sweep

    if job_id is None:
        embeddings_sweep()
    else:
        embeddings_job_run(job_id=job_id)


@shared_task(name=PRUNE_USAGE_CHANGES_TASK, **PRUNE_TASK)
def prune_usage_changes() -> int:
    """Keep the newest rows of the co-usage log of changed jobs; returns how many were deleted."""
    from recommendations.services.usage_changes import usage_changes_prune

    return usage_changes_prune()
