"""The embedded shape: a real Celery worker (thread pool, both queues) inside the ASGI server process.

With the in-memory broker (no ``REDIS_URL``) the process also runs the beat scheduler, since no other
process could. With ``LORAFORGE_EMBEDDED_WORKER=on`` and Redis, only the worker is embedded: beat runs
once, elsewhere (``celery -A loraforge beat``).

The worker and beat run in daemon threads started from the ASGI lifespan (``loraforge.lifespan``);
shutdown waits at most ``SHUTDOWN_TIMEOUT`` seconds for running tasks so the server always exits.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

logger = logging.getLogger("loraforge.embedded")

QUEUES = ("default", "generation")
READY_TIMEOUT = 20.0
SHUTDOWN_TIMEOUT = 10.0
BEAT_MAX_INTERVAL = 5  # seconds between beat ticks at most


@dataclass
class _Embedded:
    worker: Any  # celery.worker.WorkController
    worker_thread: threading.Thread
    beat: Any = None  # celery.beat.Service
    beat_thread: threading.Thread | None = None


_lock = threading.Lock()
_running: _Embedded | None = None


def embedded_worker_wanted(*, is_server: bool) -> bool:
    """``auto``: on in the ASGI server when no ``REDIS_URL`` is set; ``on``/``off`` force it."""
    setting = settings.LORAFORGE_EMBEDDED_WORKER
    if setting == "on":
        return True
    if setting == "off":
        return False
    return is_server and not settings.REDIS_URL


def embedded_worker_running() -> bool:
    """Whether this process runs the embedded worker (then background work shares the web server's CPU)."""
    return _running is not None


def embedded_worker_alive() -> bool:
    """Whether the embedded worker's thread (and beat's, where this process runs beat) is still alive."""
    running = _running
    if running is None or not running.worker_thread.is_alive():
        return False
    return running.beat_thread is None or running.beat_thread.is_alive()


def start_embedded_worker(*, ready_timeout: float = READY_TIMEOUT) -> Any:
    """Start the worker (and, on the in-memory broker, beat) once per process; returns the WorkController.

    Returns once the worker consumes its queues; raises ``RuntimeError`` when its thread dies first.
    """
    global _running
    with _lock:
        if _running is not None:
            return _running.worker
        from loraforge.celery import app

        app.set_current()
        app.set_default()
        ready = threading.Event()
        worker = app.WorkController(
            pool_cls="threads",
            concurrency=settings.LORAFORGE_EMBEDDED_CONCURRENCY,
            hostname=f"embedded-{os.getpid()}@{socket.gethostname()}",
            queues=list(QUEUES),
            ready_callback=lambda consumer: ready.set(),
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        thread = threading.Thread(target=worker.start, name="celery-embedded-worker", daemon=True)
        thread.start()
        _wait_ready(ready, thread, ready_timeout)
        running = _Embedded(worker=worker, worker_thread=thread)
        if app.conf.broker_url.startswith("memory"):
            running.beat, running.beat_thread = _start_beat(app)
        _running = running
    logger.info(
        "Embedded Celery worker started (%d threads, queues %s%s)",
        settings.LORAFORGE_EMBEDDED_CONCURRENCY,
        ", ".join(QUEUES),
        ", with beat" if running.beat is not None else "",
    )
    return worker


def _wait_ready(ready: threading.Event, thread: threading.Thread, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready.wait(0.05):
        if not thread.is_alive():
            raise RuntimeError("The embedded Celery worker stopped while starting (see the log above)")
        if time.monotonic() > deadline:
            logger.warning("The embedded Celery worker is not consuming yet after %.0f s; going on", timeout)
            return


def _start_beat(app: Any) -> tuple[Any, threading.Thread]:
    from celery.beat import Service

    service = Service(app, max_interval=BEAT_MAX_INTERVAL, scheduler_cls=app.conf.beat_scheduler)
    thread = threading.Thread(target=service.start, name="celery-embedded-beat", daemon=True)
    thread.start()
    return service, thread


def stop_embedded_worker(*, timeout: float = SHUTDOWN_TIMEOUT) -> bool:
    """Warm shutdown: stop consuming, let running tasks finish for up to ``timeout`` seconds.

    Returns False when tasks were still running at the deadline; the threads are daemons, so the
    process exits anyway and those tasks' rows are left to job recovery.
    """
    global _running
    with _lock:
        running, _running = _running, None
    if running is None:
        return True
    if running.beat is not None:
        running.beat.stop(wait=False)  # the thread is a daemon; it ends at its next tick
    deadline = time.monotonic() + timeout
    stopper = threading.Thread(target=_stop_worker, args=(running.worker,), name="celery-embedded-stop", daemon=True)
    stopper.start()
    stopper.join(timeout)
    running.worker_thread.join(max(0.0, deadline - time.monotonic()))
    if stopper.is_alive() or running.worker_thread.is_alive():
        logger.warning("Embedded Celery worker did not stop within %.0f s; exiting with tasks still running", timeout)
        return False
    logger.info("Embedded Celery worker stopped")
    return True


def _stop_worker(worker: Any) -> None:
    try:
        worker.stop(in_sighandler=False, exitcode=0)
    except Exception:  # best effort at shutdown
        logger.exception("Embedded Celery worker did not stop cleanly")
