"""Writes of analytics: resource samples (SPEC 3.6)."""

from __future__ import annotations

import logging
import socket
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from analytics.gpus import gpu_reading
from analytics.models import ResourceSample
from analytics.resources import host_reading

logger = logging.getLogger("loraforge.analytics")

HOST_MAX = 255
SAMPLE_CPU_INTERVAL = 0.5  # seconds the CPU reading of a sample spans


def resource_sample_record(*, now: datetime | None = None) -> ResourceSample:
    """One reading of this host's CPU and memory and of its first GPU (null without one)."""
    host = host_reading(interval=SAMPLE_CPU_INTERVAL)
    gpu = gpu_reading(max_age=0).first
    return ResourceSample.objects.create(
        recorded_at=now or timezone.now(),
        host=socket.gethostname()[:HOST_MAX],
        cpu_percent=host.cpu_percent,
        memory_percent=host.memory_percent,
        memory_used_mb=host.memory_used_mb,
        gpu_percent=gpu.utilization_percent if gpu else None,
        gpu_memory_percent=gpu.memory_percent if gpu else None,
    )


def resource_samples_prune(*, now: datetime | None = None) -> int:
    """Delete the samples older than ``LORAFORGE_RESOURCE_RETENTION_DAYS``; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.LORAFORGE_RESOURCE_RETENTION_DAYS)
    deleted, _ = ResourceSample.objects.filter(recorded_at__lt=cutoff).delete()
    if deleted:
        logger.info("Pruned %d resource samples recorded before %s", deleted, cutoff.isoformat())
    return deleted
