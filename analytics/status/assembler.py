"""``GET /system/status`` (SPEC 5.10, 6.9) and the cheap overview the dashboard shows.

Every probe that can block (Redis, Celery, backends' HTTP, NVML, disks, CPU) runs in a thread and is waited for
until ``BUDGET_SECONDS`` after the start; the database reads run meanwhile in the request's thread.
"""

from __future__ import annotations

import os
import time
from typing import Any

from django.conf import settings
from django.utils import timezone

from analytics.gpus import GpuReading
from analytics.status import backends, celery, disk, gpu, host, importer, jobs, recommendations, redis
from analytics.status.database import database_status
from analytics.status.probes import Probe, ProbeRun
from loraforge import __version__

BUDGET_SECONDS = 2.0  # of the 3 s the endpoint answers within: the rest is for the request around it
MESSAGE = "System status collected successfully"
HEALTHY, WARNING, ERROR = "healthy", "warning", "error"
DATABASE_UNAVAILABLE = "Database unavailable"
REDIS_UNAVAILABLE = "Redis is unavailable"
NO_WORKER = "No Celery worker responded"


def _probes(backend_probes: dict[str, Probe]) -> dict[str, Probe]:
    probes = {**backend_probes, **disk.disk_probes(), "gpu": gpu.gpu_probe(), "host": host.host_probe()}
    probes["redis"] = Probe(run=redis.redis_status, fallback=redis.redis_timed_out())
    probes["celery"] = Probe(run=celery.celery_status, fallback=celery.celery_timed_out())
    return probes


def queue_warnings(queue: dict[str, Any]) -> list[str]:
    warnings = []
    active_limit, failed_limit = settings.LORAFORGE_STATUS_ACTIVE_WARNING, settings.LORAFORGE_STATUS_FAILED_WARNING
    if queue["active"] > active_limit:
        warnings.append(f"{queue['active']} active jobs exceed the warning threshold ({active_limit})")
    if queue["failed_last_hour"] > failed_limit:
        warnings.append(f"{queue['failed_last_hour']} jobs failed in the last hour")
    return warnings


def _overall(warnings: list[str], *, database_ok: bool) -> str:
    if not database_ok:
        return ERROR
    return WARNING if warnings else HEALTHY


def _thresholds() -> dict[str, Any]:
    return {
        "queue": {
            "active_warning": settings.LORAFORGE_STATUS_ACTIVE_WARNING,
            "failed_warning": settings.LORAFORGE_STATUS_FAILED_WARNING,
        },
        "disk": {"percent_warning": settings.LORAFORGE_DISK_WARNING_PERCENT},
    }


def _service_warnings(redis_block: dict[str, Any], celery_block: dict[str, Any]) -> list[str]:
    warnings = []
    if redis_block["configured"] and not redis_block["ok"]:
        warnings.append(REDIS_UNAVAILABLE)
    if not celery_block["ok"]:
        warnings.append(NO_WORKER)
    return warnings


def _collect() -> dict[str, Any]:
    """Every block: the probes run in threads while the database is read here, then the results are recorded."""
    started = time.monotonic()
    database = database_status()
    rows = backends.backend_rows()
    cached, backend_probes = backends.stale_probes(rows)
    run = ProbeRun(_probes(backend_probes))
    queue = jobs.queue_numbers()
    enabled = sum(1 for row in rows if row.enabled)
    eta = jobs.queue_eta_seconds(pending_generations=queue.pop("pending_generations"), enabled_backends=enabled)
    importer_block = importer.importer_status()
    results = run.results(deadline=started + BUDGET_SECONDS)
    entries = backends.backend_entries(rows, {**cached, **backends.record_probes(rows, results)})
    redis_block, celery_block = dict(results["redis"]), dict(results["celery"])
    celery_block["queue_depth"] = redis_block.pop("queue_depth")
    gpus: GpuReading = results["gpu"]
    return {
        "queue_eta_seconds": eta,
        "database": database,
        "redis": redis_block,
        "celery": celery_block,
        "queue": queue,
        "backends": entries,
        "sdnext": backends.sdnext_block(entries, rows),
        "gpu": gpus,
        "host": results["host"],
        "metrics": host.metrics_block(results["host"], results[disk.PROBE_PREFIX + "data"][1], gpus),
        "disk": disk.disk_status(results),
        "importer": importer_block,
        "recommendations": recommendations.recommendations_status(gpu_available=gpus.available),
    }


def _warnings(blocks: dict[str, Any]) -> list[str]:
    warnings = [] if blocks["database"]["ok"] else [DATABASE_UNAVAILABLE]
    warnings += backends.backend_warnings(blocks["backends"])
    warnings += _service_warnings(blocks["redis"], blocks["celery"])
    warnings += queue_warnings(blocks["queue"])
    return warnings + disk.disk_warnings(blocks["disk"], threshold=settings.LORAFORGE_DISK_WARNING_PERCENT)


def system_status() -> dict[str, Any]:
    """The full status body (SPEC 5.10); datetimes are aware UTC datetimes."""
    blocks = _collect()
    gpus: GpuReading = blocks.pop("gpu")
    memory_used, memory_total = host.memory_pair(blocks.pop("host"), gpus)
    warnings = _warnings(blocks)
    now = timezone.now()
    return {
        "status": _overall(warnings, database_ok=blocks["database"]["ok"]),
        "message": MESSAGE,
        "version": __version__,
        "mode": settings.LORAFORGE_MODE,
        "auth": "on" if settings.LORAFORGE_AUTH else "off",
        "warnings": warnings,
        "last_updated": now,
        "updated_at": now,
        "gpu_available": gpus.available,
        "gpu_status": gpu.gpu_status_text(gpus),
        "memory_used": memory_used,
        "memory_total": memory_total,
        "queue_length": blocks["queue"]["active"],
        "active_workers": sum(1 for worker in blocks["celery"]["workers"] if worker["ok"]),
        "backend": "redis" if settings.REDIS_URL else "in-memory",
        **blocks,
        "gpu": gpu.gpu_block(gpus),
        "thresholds": _thresholds(),
    }


def status_overview(*, queue: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the dashboard shows without waiting on anything: cached backend health, the queue thresholds and the
    LoRA folders. ``{"status", "warnings", "backends", "updated_at"}``; no network probe, no GPU or disk reading.
    ``queue`` is ``jobs.queue_numbers()`` when the caller has it already."""
    entries = backends.cached_backend_entries(backends.backend_rows())
    queue = queue if queue is not None else jobs.queue_numbers()
    warnings = backends.backend_warnings(entries) + queue_warnings(queue)
    warnings += [f"LoRA folder does not exist: {path}" for path in disk.lora_dirs() if not os.path.isdir(path)]
    return {
        "status": _overall(warnings, database_ok=True),
        "warnings": warnings,
        "backends": entries,
        "updated_at": timezone.now(),
    }
