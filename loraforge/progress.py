"""The progress envelope and the reporters that publish it (SPEC 6.5, STYLE 9)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import async_to_sync
from django.utils import timezone

logger = logging.getLogger("loraforge.progress")

ALL_JOBS_GROUP = "lf.jobs.all"


def job_group(job_id: uuid.UUID | str) -> str:
    return f"lf.job.{uuid.UUID(str(job_id)).hex}"


def iso_timestamp(moment: datetime | None = None) -> str:
    value = (moment or timezone.now()).astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def envelope(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": event_type, "timestamp": iso_timestamp(), "data": data}


def publish(job_id: uuid.UUID | str, event_type: str, data: dict[str, Any]) -> None:
    """Send one event to ``lf.jobs.all`` and the job's group; best effort, never raises."""
    from channels.layers import get_channel_layer

    event = envelope(event_type, data)
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        for group in (ALL_JOBS_GROUP, job_group(job_id)):
            async_to_sync(layer.group_send)(group, {"type": "progress.event", "group": group, "event": event})
    except Exception:
        logger.warning("Could not publish %s for job %s", event_type, job_id, exc_info=True)
