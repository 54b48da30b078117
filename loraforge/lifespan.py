"""Start-up and shutdown of the server process (the ASGI lifespan protocol).

Only a real ASGI server (uvicorn, daphne) sends ``lifespan.startup``, so receiving it is how the process
knows it is the server: that is when the embedded Celery worker starts (``loraforge.embedded``).
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.utils.module_loading import import_string

from loraforge import embedded
from loraforge.memory import start_heap_trimmer, stop_heap_trimmer
from loraforge.signals import send_process_started

logger = logging.getLogger("loraforge.server")

STARTUP_SCAN = "adapters.scan_service.scan_start_on_startup"
NO_API_KEY = "No API key configured. Create one with: python manage.py create_api_key --name <name>"


def on_startup() -> None:
    from loraforge.api_keys import api_keys_exist

    try:
        if settings.LORAFORGE_AUTH:
            if not api_keys_exist():
                logger.warning(NO_API_KEY)
        else:
            logger.warning("LORAFORGE_AUTH=off: the API, WebSocket, media and dashboard are open (local use only)")
    finally:
        connections.close_all()  # this runs in an executor thread that serves no request
    try:
        send_process_started("web")  # e.g. the generation app syncs the `default` backend from SDNEXT_URL
    finally:
        connections.close_all()
    start_heap_trimmer()
    for root in settings.LORAFORGE_LORA_DIRS:
        if root == settings.DATA_DIR / "loras":
            root.mkdir(parents=True, exist_ok=True)
    if embedded.embedded_worker_wanted(is_server=True):
        embedded.start_embedded_worker()
        _recover_jobs()
    if settings.LORAFORGE_SCAN_ON_STARTUP:
        _queue_startup_scan()


def _recover_jobs() -> None:
    """Once when the embedded worker starts (SPEC 6.2.6); the in-memory broker starts empty, so every pending
    job is queued again."""
    from loraforge.jobs.recovery import jobs_recover

    try:
        in_memory = not settings.REDIS_URL
        for line in jobs_recover(requeue_all_pending=in_memory):
            logger.warning("Recovered job: %s", line)
    except Exception:
        logger.exception("Job recovery at start-up failed")
    finally:
        connections.close_all()


def _queue_startup_scan() -> None:
    """``LORAFORGE_SCAN_ON_STARTUP``: one library scan, unless one is pending or running already."""
    # By dotted path: the core imports no app module (STYLE); the adapters app owns the scan.
    scan_start_on_startup = import_string(STARTUP_SCAN)
    try:
        scan_start_on_startup()
    except Exception:
        logger.exception("Could not queue the start-up scan")
    finally:
        connections.close_all()


def on_shutdown() -> None:
    embedded.stop_embedded_worker()
    stop_heap_trimmer()


async def handle_lifespan(receive: Any, send: Any) -> None:
    """Answer ``lifespan.startup`` and ``lifespan.shutdown`` (ASGI lifespan spec 2.0)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await sync_to_async(on_startup, thread_sensitive=False)()
            except Exception as exc:
                logger.exception("Start-up failed")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await sync_to_async(on_shutdown, thread_sensitive=False)()
            except Exception as exc:
                logger.exception("Shutdown failed")
                await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.shutdown.complete"})
            return
