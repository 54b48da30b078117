"""The importer block of the status (SPEC 6.9) and the library counts the dashboard shares (SPEC 5.8)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q

from adapters.models import Adapter
from analytics.status.disk import lora_dirs
from loraforge.models.jobs import BackgroundJob, BackgroundJobKind


def library_counts() -> dict[str, int]:
    """``total``, ``active``, ``missing_files`` and ``duplicates`` of the adapters, in one aggregate."""
    counts = Adapter.objects.aggregate(
        total=Count("pk"),
        active=Count("pk", filter=Q(active=True)),
        missing_files=Count("pk", filter=Q(missing_since__isnull=False)),
        duplicates=Count("pk", filter=Q(has_duplicates=True)),
    )
    return {name: int(value or 0) for name, value in counts.items()}


def importer_status() -> dict[str, Any]:
    """The newest scan job's time (finished, else created) and status; null when no scan ever ran."""
    scans = BackgroundJob.objects.filter(kind=BackgroundJobKind.SCAN).only("status", "created_at", "finished_at")
    scan = scans.order_by("-created_at", "-id").first()
    counts = library_counts()
    return {
        "lora_dirs": lora_dirs(),
        "last_scan_at": (scan.finished_at or scan.created_at) if scan else None,
        "last_scan_status": scan.status if scan else None,
        "total_adapters": counts["total"],
        "missing_files": counts["missing_files"],
        "duplicates": counts["duplicates"],
    }
