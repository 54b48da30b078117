"""Sending and revoking a job's Celery task: by task name (the core imports no app), one way for every kind."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from loraforge.errors import ServiceUnavailable

logger = logging.getLogger("loraforge.jobs")

QUEUE_UNAVAILABLE = "Task queue unavailable"
HARD_LIMIT_MARGIN = 30  # seconds between a task's soft time limit (its job fails) and the pool's hard kill


class QueueUnavailable(ServiceUnavailable):
    def __init__(self, job_id: uuid.UUID | str) -> None:
        super().__init__(QUEUE_UNAVAILABLE, job_id=str(job_id))
        self.job_id = str(job_id)


def task_send(
    name: str,
    *,
    args: list[Any],
    queue: str | None = None,
    countdown: float | None = None,
    time_limit: int | None = None,
) -> str:
    """Send task ``name`` and return its id; ``time_limit`` is the soft limit (the hard one follows 30 s later).
    Raises whatever the broker raises: the caller decides what a refused send means for its job."""
    from loraforge.celery import app

    options: dict[str, Any] = {}
    if queue is not None:
        options["queue"] = queue
    if countdown is not None:
        options["countdown"] = countdown
    if time_limit is not None:
        options.update(soft_time_limit=time_limit, time_limit=time_limit + HARD_LIMIT_MARGIN)
    return str(app.send_task(name, args=args, **options).id)[:64]


def task_revoke(task_id: str | None, *, job_id: uuid.UUID | str) -> None:
    """Best effort, never terminating a process: a task that starts anyway finds its job cancelled."""
    if not task_id:
        return
    from loraforge.celery import app

    try:
        app.control.revoke(task_id)
    except Exception:
        logger.info("Could not revoke task %s of job %s", task_id, job_id, exc_info=True)
