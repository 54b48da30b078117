"""Analytics reports (SPEC 5.7, 6.8): KPIs, time series, errors, insights and adapter usage of generation jobs.

Every figure is exact: whole hours and days come from the rollups the database keeps (``analytics.models``), the
partial first and last hour of a window from the jobs themselves (``analytics.selectors.rollups``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import Avg, Count, Q
from django.db.models.functions import TruncDay, TruncHour

from adapters.models import Adapter
from analytics.models import ResourceSample
from analytics.selectors import insights as insight_rules
from analytics.selectors.rollups import (
    AdapterTotals,
    ErrorText,
    JobTotals,
    Span,
    adapter_totals,
    error_texts,
    job_totals,
    summed,
    time_improvement,
)
from analytics.windows import TIME_RANGES, Window, utc, window_for

__all__ = [
    "TIME_RANGES",
    "analytics_errors",
    "analytics_insights",
    "analytics_lora_usage",
    "analytics_stats",
    "analytics_summary",
    "analytics_timeseries",
]
LORA_USAGE_SERIES = 10


def _rate(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


@dataclass
class Period:
    """What a report needs of a window: its buckets' totals and the previous window's totals (read once)."""

    window: Window
    buckets: dict[datetime, JobTotals]
    current: JobTotals
    previous: JobTotals


def _period(time_range: str, now: datetime | None) -> Period:
    window = window_for(time_range, now)
    current_span = Span(window.start, window.end, closed=True)
    previous_span = Span(window.previous_start, window.start)
    current, previous = job_totals([current_span, previous_span], window.bucket_of)
    return Period(window, current, summed(current.values()), summed(previous.values()))


def _adapter_counts() -> dict[str, int]:
    counts = Adapter.objects.aggregate(total=Count("pk"), active=Count("pk", filter=Q(active=True)))
    return {"active_loras": int(counts["active"]), "total_loras": int(counts["total"])}


# --- KPIs ------------------------------------------------------------------------------------------------------------


def _kpis(period: Period) -> dict[str, Any]:
    current, previous = period.current, period.previous
    growth = _rate(current.total - previous.total, previous.total)
    return {
        "time_range": period.window.time_range,
        "window_start": period.window.start,
        "window_end": period.window.end,
        "total_generations": current.total,
        "generation_growth": growth,
        "avg_generation_time": _round(current.mean_seconds),
        "time_improvement": time_improvement(current, previous),
        "success_rate": current.success_rate,
        "total_succeeded": current.succeeded,
        "total_failed": current.failed,
        "total_cancelled": current.cancelled,
        **_adapter_counts(),
    }


def analytics_stats(*, time_range: str, now: datetime | None = None) -> dict[str, Any]:
    """The KPI object of ``/analytics/stats``."""
    return _kpis(_period(time_range, now))


# --- errors ----------------------------------------------------------------------------------------------------------


def _description(texts: dict[str | None, ErrorText]) -> str | None:
    """The most frequent error text of a group; ties go to the most recent one (then to the text, to be stable)."""
    oldest = datetime.min.replace(tzinfo=UTC)

    def rank(item: tuple[str | None, ErrorText]) -> tuple[int, datetime, str]:
        text, seen = item
        return seen.count, utc(seen.last_created_at) if seen.last_created_at else oldest, text or ""

    return max(texts.items(), key=rank)[0]


def _errors(window: Window) -> list[dict[str, Any]]:
    """The failed jobs of the window by error code; their counts add up to the window's failed jobs."""
    groups = error_texts(Span(window.start, window.end, closed=True))
    counts = {code: sum(text.count for text in texts.values()) for code, texts in groups.items()}
    total_failed = sum(counts.values())
    rows = [
        {"type": code, "count": count, "percentage": round(100 * count / total_failed, 2),
         "description": _description(groups[code])}
        for code, count in counts.items()
    ]  # fmt: skip
    return sorted(rows, key=lambda row: (-row["count"], row["type"]))


def analytics_errors(*, time_range: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """Failed jobs of the window grouped by error code (``/analytics/errors``)."""
    return _errors(window_for(time_range, now))


# --- adapter usage ---------------------------------------------------------------------------------------------------


def _usage(window: Window) -> dict[Any, AdapterTotals]:
    return adapter_totals(Span(window.start, window.end, closed=True), whole_days=window.daily)


def _top_adapters(usage: dict[Any, AdapterTotals], limit: int) -> list[tuple[Adapter, AdapterTotals]]:
    """The ``limit`` adapters with most linked jobs, ties by name (names are read only for the candidates)."""
    used = {adapter_id: totals for adapter_id, totals in usage.items() if totals.total > 0}
    if not used or limit < 1:
        return []
    counts = sorted((totals.total for totals in used.values()), reverse=True)
    threshold = counts[min(limit, len(counts)) - 1]
    candidates = [adapter_id for adapter_id, totals in used.items() if totals.total >= threshold]
    adapters = Adapter.objects.filter(pk__in=candidates).only("id", "name", "last_used_at")
    ranked = sorted(adapters, key=lambda adapter: (-used[adapter.pk].total, adapter.name, str(adapter.pk)))
    return [(adapter, used[adapter.pk]) for adapter in ranked[:limit]]


def _lora_usage_series(window: Window) -> list[dict[str, Any]]:
    return [
        {
            "adapter_id": adapter.pk,
            "name": adapter.name,
            "count": totals.total,
            "success_rate": _rate(totals.succeeded, totals.succeeded + totals.failed),
        }
        for adapter, totals in _top_adapters(_usage(window), LORA_USAGE_SERIES)
    ]


def analytics_lora_usage(*, time_range: str, limit: int = 20, now: datetime | None = None) -> list[dict[str, Any]]:
    """``/analytics/lora-usage``: adapters by generation jobs linked in the window, then name."""
    window = window_for(time_range, now)
    return [
        {
            "adapter_id": adapter.pk,
            "name": adapter.name,
            "count": totals.total,
            "succeeded": totals.succeeded,
            "failed": totals.failed,
            "last_used_at": adapter.last_used_at,
        }
        for adapter, totals in _top_adapters(_usage(window), limit)
    ]


# --- time series -----------------------------------------------------------------------------------------------------


def _resource_usage(window: Window) -> list[dict[str, Any]]:
    trunc = TruncDay if window.daily else TruncHour
    samples = (
        ResourceSample.objects.filter(recorded_at__gte=window.start, recorded_at__lte=window.end)
        .annotate(slot=trunc("recorded_at", tzinfo=UTC))
        .values("slot")
        .annotate(cpu=Avg("cpu_percent"), memory=Avg("memory_percent"), gpu=Avg("gpu_percent"))
    )
    means: dict[datetime, dict[str, Any]] = {utc(row["slot"]): dict(row) for row in samples}
    series = []
    for bucket in window.buckets:
        row = means.get(bucket, {})
        series.append(
            {
                "timestamp": bucket,
                "cpu_percent": _round(row.get("cpu")),
                "memory_percent": _round(row.get("memory")),
                "gpu_percent": _round(row.get("gpu")),
            }
        )
    return series


def _timeseries(period: Period) -> dict[str, Any]:
    volume, performance = [], []
    for bucket in period.window.buckets:
        totals = period.buckets.get(bucket, JobTotals())
        volume.append(
            {"timestamp": bucket, "count": totals.total, "succeeded": totals.succeeded, "failed": totals.failed}
        )
        performance.append(
            {"timestamp": bucket, "avg_time": _round(totals.mean_seconds), "success_rate": totals.success_rate}
        )
    return {
        "generation_volume": volume,
        "performance": performance,
        "lora_usage": _lora_usage_series(period.window),
        "resource_usage": _resource_usage(period.window),
    }


def analytics_timeseries(*, time_range: str, now: datetime | None = None) -> dict[str, Any]:
    """``/analytics/timeseries``: zero-filled buckets of the window, ascending."""
    return _timeseries(_period(time_range, now))


# --- insights and summary --------------------------------------------------------------------------------------------


def _insights(period: Period, errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return insight_rules.insights(
        current=period.current, previous=period.previous, errors=errors, time_range=period.window.time_range
    )


def analytics_insights(*, time_range: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """``/analytics/insights``: the rules of SPEC 6.8, in their order."""
    period = _period(time_range, now)
    return _insights(period, _errors(period.window))


def analytics_summary(*, time_range: str, now: datetime | None = None) -> dict[str, Any]:
    """``/analytics/summary``: KPIs, time series, errors and insights, each shared part read once."""
    period = _period(time_range, now)
    errors = _errors(period.window)
    return {
        "time_range": time_range,
        "generated_at": period.window.end,
        "kpis": _kpis(period),
        "chart_data": _timeseries(period),
        "error_breakdown": errors,
        "performance_insights": _insights(period, errors),
    }
