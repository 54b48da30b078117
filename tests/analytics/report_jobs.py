"""Helpers of the analytics tests: generation jobs with chosen timestamps, and the rollups as plain rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from analytics.models import AdapterDayRollup, AdapterHourRollup, JobErrorHourRollup, JobHourRollup
from deliveries.models import DeliveryJob

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)


def make_job(
    created_at: datetime,
    status: str = "succeeded",
    *,
    seconds: float | None = None,
    error_code: str | None = None,
    error: str | None = None,
    kind: str = "generation",
    adapters: list[Any] = (),  # type: ignore[assignment]
) -> DeliveryJob:
    """A job as the worker leaves it; ``seconds`` sets ``started_at``/``finished_at`` (duration)."""
    started = finished = None
    if seconds is not None:
        started = created_at + timedelta(seconds=1)
        finished = started + timedelta(seconds=seconds)
    job = DeliveryJob.objects.create(
        kind=kind, mode="sdnext", prompt="p", status=status, created_at=created_at, started_at=started,
        finished_at=finished, error_code=error_code, error=error,
    )  # fmt: skip
    if adapters:
        from tests.factories import link_adapters

        link_adapters(job, [(adapter, 1.0) for adapter in adapters])
    return job


def rollup_rows() -> dict[str, list[tuple[Any, ...]]]:
    """Every non-empty rollup row, without ids, in a stable order."""
    tables = {
        "jobs": (JobHourRollup, ["bucket", "total", "pending", "running", "succeeded", "failed", "cancelled",
                                 "duration_us", "duration_count"], "total"),
        "errors": (JobErrorHourRollup, ["bucket", "error_code", "error_key", "error", "count", "last_created_at"],
                   "count"),
        "adapter_hours": (AdapterHourRollup, ["bucket", "adapter_id", "total", "succeeded", "failed"], "total"),
        "adapter_days": (AdapterDayRollup, ["bucket", "adapter_id", "total", "succeeded", "failed"], "total"),
    }  # fmt: skip
    rows = {}
    for name, (model, columns, counter) in tables.items():
        queryset = model._default_manager.exclude(**{counter: 0}).order_by(*columns[:3])
        rows[name] = [tuple(row) for row in queryset.values_list(*columns)]
    return rows
