"""Signals of the core that higher apps connect to (STYLE: the core imports no app)."""

from __future__ import annotations

import logging

from django.dispatch import Signal

logger = logging.getLogger("loraforge.server")

# Sent once when a web (ASGI lifespan) or worker (Celery ``worker_ready``) process starts, after migrations;
# ``sender`` is ``"web"`` or ``"worker"``. The generation app syncs the ``default`` backend on it.
process_started = Signal()


def send_process_started(kind: str) -> None:
    """Run every receiver; one that fails is logged and does not stop the process or the others."""
    for receiver, result in process_started.send_robust(sender=kind):
        if isinstance(result, BaseException):
            logger.error("Start-up hook %r failed", receiver, exc_info=result)
