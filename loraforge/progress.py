"""The progress envelope and the reporters that publish it (SPEC 6.5, STYLE 9)."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

logger = logging.getLogger("loraforge.progress")

ALL_JOBS_GROUP = "lf.jobs.all"
JOB_PROGRESS = "job_progress"  # the event of every job that is not a generation
PUBLISH_TIMEOUT = 5.0


def job_group(job_id: uuid.UUID | str) -> str:
    return f"lf.job.{uuid.UUID(str(job_id)).hex}"


def iso_timestamp(moment: datetime | None = None) -> str:
    value = (moment or timezone.now()).astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def envelope(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": event_type, "timestamp": iso_timestamp(), "data": data}


def job_progress_data(job: Any, *, kind: str, snapshot: bool = False, omit: tuple[str, ...] = ()) -> dict[str, Any]:
    """The ``data`` of a ``job_progress`` event for a job row of any kind (a ``JobRecord``): ``result`` only once
    the job is terminal, without the keys in ``omit``."""
    result = job.result if job.is_terminal else None
    if isinstance(result, dict) and omit:
        result = {key: value for key, value in result.items() if key not in omit}
    return {
        "job_id": str(job.pk),
        "kind": kind,
        "status": job.status,
        "progress": job.progress,
        "message": job.message,
        "result": result,
        "error": job.error,
        "snapshot": snapshot,
    }


class _PublisherLoop:
    """One event loop in a daemon thread that every publish of the process runs on, so the channel layer's
    connections (channels-redis pools them per loop) are reused instead of opened for every event; the caller
    still waits until the event was handed over, so events keep their order. Re-created after a fork."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def run(self, coroutine: Coroutine[Any, Any, None]) -> None:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._running_loop())
        future.result(PUBLISH_TIMEOUT)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid() or not self._loop.is_running():
                loop = asyncio.new_event_loop()
                started = threading.Event()
                loop.call_soon(started.set)
                threading.Thread(target=loop.run_forever, name="progress-publisher", daemon=True).start()
                started.wait(PUBLISH_TIMEOUT)
                self._loop, self._pid = loop, os.getpid()
            return self._loop


_publisher = _PublisherLoop()


async def _send(layer: Any, job_id: uuid.UUID | str, event: dict[str, Any]) -> None:
    for group in (ALL_JOBS_GROUP, job_group(job_id)):
        await layer.group_send(group, {"type": "progress.event", "group": group, "event": event})


def publish(job_id: uuid.UUID | str, event_type: str, data: dict[str, Any]) -> None:
    """Send one event to ``lf.jobs.all`` and the job's group; best effort, never raises."""
    from channels.layers import get_channel_layer

    event = envelope(event_type, data)
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        _publisher.run(_send(layer, job_id, event))
    except Exception:
        logger.warning("Could not publish %s for job %s", event_type, job_id, exc_info=True)
