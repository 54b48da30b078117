"""Host metrics of the status (SPEC 5.10 ``metrics``): CPU, memory, the data folder's disk, uptime. Read in a probe
thread (``cpu_percent`` spans a short interval)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from analytics.gpus import GpuReading
from analytics.resources import MIB, DiskUsage, HostReading, host_reading, uptime_seconds
from analytics.status.probes import Probe


@dataclass(frozen=True)
class HostMetrics:
    reading: HostReading | None
    uptime_seconds: int | None


def _read() -> HostMetrics:
    return HostMetrics(reading=host_reading(), uptime_seconds=uptime_seconds())


def host_probe() -> Probe:
    return Probe(run=_read, fallback=HostMetrics(reading=None, uptime_seconds=None))


def metrics_block(host: HostMetrics, data_disk: DiskUsage | None, gpus: GpuReading) -> dict[str, Any]:
    reading = host.reading
    return {
        "cpu_percent": reading.cpu_percent if reading else None,
        "memory_percent": reading.memory_percent if reading else None,
        "memory_used": reading.memory_used_mb if reading else None,
        "memory_total": reading.memory_total_mb if reading else None,
        "disk_percent": data_disk.percent if data_disk else None,
        "disk_used": data_disk.used_bytes // MIB if data_disk else None,
        "disk_total": data_disk.total_bytes // MIB if data_disk else None,
        "gpus": [device.as_dict() for device in gpus.devices],
        "uptime_seconds": host.uptime_seconds,
        "timestamp": timezone.now(),
    }


def memory_pair(host: HostMetrics, gpus: GpuReading) -> tuple[int | None, int | None]:
    """``memory_used``/``memory_total`` (MiB): the first GPU's memory, else the host's RAM."""
    first = gpus.first
    if first is not None and first.memory_total is not None:
        return first.memory_used, first.memory_total
    reading = host.reading
    return (reading.memory_used_mb, reading.memory_total_mb) if reading else (None, None)
