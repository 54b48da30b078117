"""GPU in the status (SPEC 6.9): the ``gpu`` block, ``gpu_available``/``gpu_status`` and the first GPU's memory."""

from __future__ import annotations

from typing import Any

from analytics.gpus import NO_GPU, GpuReading, gpu_reading
from analytics.status.probes import Probe

UNAVAILABLE = "unavailable"


def gpu_probe() -> Probe:
    return Probe(run=gpu_reading, fallback=NO_GPU)


def gpu_block(reading: GpuReading) -> dict[str, Any]:
    return {
        "available": reading.available,
        "source": reading.source,
        "devices": [device.as_dict() for device in reading.devices],
    }


def gpu_status_text(reading: GpuReading) -> str:
    """The first device's name, else ``"unavailable"`` (a CPU-only host is not a warning)."""
    first = reading.first
    return first.name if first else UNAVAILABLE
