"""Signals of the core that higher apps connect to (STYLE: the core imports no app)."""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger("loraforge.server")

# Sent once when a web (ASGI lifespan) or worker (Celery ``worker_ready``) process starts, after migrations;
# ``sender`` is ``"web"`` or ``"worker"``. The generation app syncs the ``default`` backend on it.
process_started = Signal()

# Sent after a BackgroundJob was ended by someone other than its task: cancelled (endpoint, admin) or failed by the
# recovery sweep (its worker was lost). ``sender`` is the job's kind, ``job`` the row as stored. An app whose job
# keeps a row of its own (a Backup) settles that row here; the core never imports it.
background_job_stopped = Signal()


def send_process_started(kind: str) -> None:
    """Run every receiver; one that fails is logged and does not stop the process or the others."""
    for receiver, result in process_started.send_robust(sender=kind):
        if isinstance(result, BaseException):
            logger.error("Start-up hook %r failed", receiver, exc_info=result)


def send_background_job_stopped(job: Any) -> None:
    """Run every receiver of ``background_job_stopped``; one that fails is logged and does not stop the others."""
    for receiver, result in background_job_stopped.send_robust(sender=job.kind, job=job):
        if isinstance(result, BaseException):
            logger.error("Job-stopped hook %r failed for job %s", receiver, job.pk, exc_info=result)
