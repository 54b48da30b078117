"""Dashboard data (SPEC 5.8): counts, the system's health from cached readings, featured adapters, the activity
feed. Nothing here waits on a backend (cached health only) or builds the recommendation index."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from adapters.models import Adapter
from adapters.serializers import preview_url
from analytics.gpus import gpu_reading
from analytics.resources import disk_usage
from analytics.status import status_overview
from analytics.status.gpu import gpu_status_text
from analytics.status.importer import library_counts
from analytics.status.jobs import queue_activity
from deliveries.models import DeliveryJob, DeliveryKind
from recommendations.selectors import embedding_coverage

GIB = 1024**3
NOT_AVAILABLE = "n/a"
FEATURED_LIMIT = 5
FEED_LIMIT = 10
PROMPT_CUT = 60
ELLIPSIS = "…"
CIVITAI_MODEL_URL = "https://civitai.com/models/{model_id}"
ICONS = {"pending": "⏳", "running": "🚀", "succeeded": "✅", "failed": "⚠️", "cancelled": "🚫"}


def percent_floor(part: int, whole: int) -> int:
    """``100·part // whole``; 0 when there is nothing."""
    return 100 * part // whole if whole else 0


def gb_pair(used_bytes: int, total_bytes: int) -> str:
    """``"U.U GB / T.T GB"`` (GB = 1024³ bytes, as the export estimate's units)."""
    return f"{used_bytes / GIB:.1f} GB / {total_bytes / GIB:.1f} GB"


def _recent_imports() -> int:
    since = timezone.now() - timedelta(hours=24)
    return Adapter.objects.filter(Q(created_at__gte=since) | Q(last_ingested_at__gte=since)).count()


def _stats(queue: dict[str, int]) -> dict[str, int]:
    counts = library_counts()
    current, total = embedding_coverage()
    return {
        "total_loras": counts["total"],
        "active_loras": counts["active"],
        "embeddings_coverage": percent_floor(current, total),
        "active_share": percent_floor(counts["active"], counts["total"]),
        "recent_imports": _recent_imports(),
        "active_jobs": queue["active"],
        "missing_files": counts["missing_files"],
        "duplicates": counts["duplicates"],
    }


def _gpu_memory() -> tuple[str, str]:
    reading = gpu_reading()
    first = reading.first
    if first is None or first.memory_total is None or first.memory_used is None:
        return gpu_status_text(reading), NOT_AVAILABLE
    return gpu_status_text(reading), gb_pair(first.memory_used * 1024 * 1024, first.memory_total * 1024 * 1024)


def _storage_usage() -> str:
    usage = disk_usage(settings.DATA_DIR)
    return gb_pair(usage.used_bytes, usage.total_bytes) if usage else NOT_AVAILABLE


def _system_health(queue: dict[str, int]) -> dict[str, Any]:
    overview = status_overview(queue=queue)
    active_jobs = queue["active"]
    gpu_status, gpu_memory = _gpu_memory()
    entries = overview["backends"]
    return {
        "status": overview["status"],
        "gpu_status": gpu_status,
        "gpu_memory": gpu_memory,
        "queue_status": "active" if active_jobs > 0 else "idle",
        "storage_usage": _storage_usage(),
        "backends_healthy": sum(1 for entry in entries if entry["enabled"] and entry["healthy"] is True),
        "backends_total": len(entries),
    }


def dashboard_stats() -> dict[str, Any]:
    """``{"stats": {...}, "system_health": {...}}`` of ``GET /dashboard/stats``."""
    queue = queue_activity()
    return {"stats": _stats(queue), "system_health": _system_health(queue)}


def civitai_url(model_id: int | None, version_id: int | None) -> str | None:
    if model_id is None:
        return None
    url = CIVITAI_MODEL_URL.format(model_id=model_id)
    return f"{url}?modelVersionId={version_id}" if version_id is not None else url


def featured_loras() -> list[dict[str, Any]]:
    """Up to five active adapters, most recently updated first, then by name."""
    fields = ("id", "name", "version", "tags", "active", "civitai_model_id", "civitai_version_id", "description")
    rows = (
        Adapter.objects.filter(active=True)
        .order_by("-updated_at", "name", "id")
        .only(*fields, "preview_path", "base_model", "updated_at")[:FEATURED_LIMIT]
    )
    return [
        {
            "id": str(adapter.pk),
            "name": adapter.name,
            "version": adapter.version,
            "tags": list(adapter.tags or []),
            "active": adapter.active,
            "civitai_url": civitai_url(adapter.civitai_model_id, adapter.civitai_version_id),
            "description": adapter.description,
            "preview_url": preview_url(adapter),
            "base_model": adapter.base_model,
        }
        for adapter in rows
    ]


def _cut(prompt: str) -> str:
    return prompt[:PROMPT_CUT] + ELLIPSIS if len(prompt) > PROMPT_CUT else prompt


def feed_message(*, kind: str, prompt: str, status: str) -> str:
    label = "Generation" if kind == DeliveryKind.GENERATION else "Delivery"
    return f"{label} job '{_cut(prompt)}' {status}"


def activity_feed() -> list[dict[str, Any]]:
    """The last ten deliveries, newest first."""
    fields = ("id", "kind", "mode", "prompt", "status", "created_at")
    rows = DeliveryJob.objects.order_by("-created_at", "-id").only(*fields)[:FEED_LIMIT]
    return [
        {
            "id": str(job.pk),
            "type": job.status,
            "status": job.status,
            "message": feed_message(kind=job.kind, prompt=job.prompt, status=job.status),
            "mode": job.mode,
            "prompt": job.prompt,
            "timestamp": job.created_at,
            "icon": ICONS.get(job.status, ""),
        }
        for job in rows
    ]
