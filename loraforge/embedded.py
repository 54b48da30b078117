"""The embedded shape: a real Celery worker (thread pool) inside the ASGI server process."""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from django.conf import settings

logger = logging.getLogger("loraforge.embedded")

_lock = threading.Lock()
_worker: Any = None


def embedded_worker_wanted(*, is_server: bool) -> bool:
    setting = settings.LORAFORGE_EMBEDDED_WORKER
    if setting == "on":
        return True
    if setting == "off":
        return False
    return is_server and not settings.REDIS_URL


def start_embedded_worker() -> Any:
    """Start the worker once per process (idempotent); returns the WorkController."""
    global _worker
    with _lock:
        if _worker is not None:
            return _worker
        from loraforge.celery import app

        app.finalize()
        app.set_current()
        app.set_default()
        worker = app.WorkController(
            pool_cls="threads",
            concurrency=settings.LORAFORGE_EMBEDDED_CONCURRENCY,
            hostname=f"embedded@{socket.gethostname()}",
            queues=["default", "generation"],
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            loglevel=logging.WARNING,
        )
        thread = threading.Thread(target=worker.start, name="celery-embedded-worker", daemon=True)
        thread.start()
        _worker = worker
        logger.info("Embedded Celery worker started (%s threads)", settings.LORAFORGE_EMBEDDED_CONCURRENCY)
        return worker


def stop_embedded_worker() -> None:
    global _worker
    with _lock:
        if _worker is None:
            return
        try:
            _worker.stop(in_sighandler=False, exitcode=0)
        except Exception:  # pragma: no cover - best effort at shutdown
            logger.exception("Embedded worker did not stop cleanly")
        _worker = None


def embedded_worker_running() -> bool:
    return _worker is not None
