"""SPEC 6.2.5's time limit where the pool enforces none (the embedded shape's thread pool): a task checks its own
deadline between steps and ends ``failed`` (``task_timeout``) like a task the prefork pool interrupts.

``task_prerun`` sets the running task's deadline from its soft time limit (sent with the task, else declared on
it); ``deadline_check()`` raises Celery's ``SoftTimeLimitExceeded`` once it has passed, so a job handles both the
same way. Outside a task (a command running a scan inline) there is no deadline.
"""

from __future__ import annotations

import contextvars
import time
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import task_postrun, task_prerun

TIME_LIMIT_EXCEEDED = "Job exceeded its time limit"

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("loraforge_job_deadline", default=None)


def soft_limit_of(task: Any) -> float | None:
    """The soft limit a task runs under: the one sent with it, else the one its definition declares."""
    request_limits = getattr(task.request, "timelimit", None) or (None, None)
    limit = request_limits[1] or getattr(task, "soft_time_limit", None)
    return float(limit) if limit else None


def deadline_start(seconds: float | None) -> contextvars.Token[float | None]:
    return _deadline.set(time.monotonic() + seconds if seconds else None)


def deadline_end(token: contextvars.Token[float | None] | None = None) -> None:
    if token is not None:
        _deadline.reset(token)
    else:
        _deadline.set(None)


def deadline_check() -> None:
    """Between two steps of a job: raise ``SoftTimeLimitExceeded`` once the running task's deadline passed."""
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() >= deadline:
        raise SoftTimeLimitExceeded(TIME_LIMIT_EXCEEDED)


def _start_task_deadline(sender: Any = None, **kwargs: Any) -> None:
    deadline_start(soft_limit_of(sender) if sender is not None else None)


def _end_task_deadline(**kwargs: Any) -> None:
    deadline_end()


def task_deadlines_connect() -> None:
    """Every task of this process runs under its deadline (called once where the Celery app is made)."""
    task_prerun.connect(_start_task_deadline, weak=False, dispatch_uid="loraforge.task_deadline.start")
    task_postrun.connect(_end_task_deadline, weak=False, dispatch_uid="loraforge.task_deadline.end")
