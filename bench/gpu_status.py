"""The GPU part of ``GET /system/status`` read from the real NVML of this host (SPEC 6.9), for a machine with a GPU.

Prints one JSON object: the status's GPU fields (``gpu_available``, ``gpu_status``, ``memory_used``,
``memory_total``, ``gpu``), the resource sample's GPU columns, and how long a cold and a kept reading took. On a
CPU-only host it prints ``gpu_available: false`` and ``source: null``. No database is used.

    .venv/bin/python -m bench.gpu_status [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _setup() -> None:
    os.environ.setdefault("LORAFORGE_DATA_DIR", tempfile.mkdtemp(prefix="loraforge-gpu-status-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loraforge.settings")
    import django

    django.setup()


def _timed(read: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = read()
    return value, round((time.perf_counter() - started) * 1000.0, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="cold readings to time (default 5)")
    args = parser.parse_args(argv)
    _setup()
    from analytics.gpus import gpu_reading, gpu_reading_reset
    from analytics.status.gpu import gpu_block, gpu_status_text
    from analytics.status.host import HostMetrics, memory_pair

    cold_ms = []
    for _ in range(max(1, args.repeat)):
        gpu_reading_reset()
        reading, elapsed = _timed(gpu_reading)
        cold_ms.append(elapsed)
    _, kept_ms = _timed(gpu_reading)
    memory_used, memory_total = memory_pair(HostMetrics(reading=None, uptime_seconds=None), reading)
    first = reading.first
    report = {
        "gpu_available": reading.available,
        "gpu_status": gpu_status_text(reading),
        "memory_used": memory_used,
        "memory_total": memory_total,
        "gpu": gpu_block(reading),
        "resource_sample": {
            "gpu_percent": first.utilization_percent if first else None,
            "gpu_memory_percent": first.memory_percent if first else None,
        },
        "timing_ms": {"cold": cold_ms, "kept": kept_ms},
        "torch_imported": "torch" in sys.modules,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
