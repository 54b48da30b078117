"""Celery tasks of the recommendations app: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

EMBEDDINGS_TIME_LIMIT = 6 * 3600


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
