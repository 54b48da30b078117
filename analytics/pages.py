"""The dashboard page at ``/`` (SPEC 9.2): server-rendered from the same selectors as the analytics API.

Access: an active staff session (the admin login); anonymous visitors and logged-in users without ``is_staff`` are
redirected to ``/admin/login/?next=<page>`` (the admin's login page tells a non-staff user they are not authorised).
``LORAFORGE_AUTH=off`` opens the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import json_script
from rest_framework.utils.encoders import JSONEncoder

from analytics import charts
from analytics.page_data import backend_health, dashboard_jobs
from analytics.selectors.dashboard import dashboard_stats
from analytics.selectors.reports import analytics_summary
from analytics.serializers.dashboard import DashboardStatsSerializer
from analytics.status.backends import backend_rows, cached_backend_entries

RANGES = ("24h", "7d", "30d")
RANGE_LABELS = {"24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}
DASH = "—"
PROGRESS_SOCKET = "/api/v1/ws/progress"


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    value: str
    hint: str = ""
    tone: str = ""  # "good", "bad" or "" (neutral): colours the hint


def dashboard_page(request: HttpRequest) -> HttpResponse:
    if settings.LORAFORGE_AUTH and not (request.user.is_active and request.user.is_staff):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    time_range = request.GET.get("range", "24h")
    if time_range not in RANGES:
        time_range = "24h"
    return render(request, "analytics/dashboard.html", dashboard_context(time_range, request))


def dashboard_context(time_range: str, request: HttpRequest) -> dict[str, Any]:
    # The bodies exactly as GET /analytics/summary and GET /dashboard/stats answer them.
    summary = analytics_summary(time_range=time_range)
    stats = DashboardStatsSerializer(dashboard_stats()).data
    chart_data = summary["chart_data"]
    recent, running = dashboard_jobs()
    return {
        "time_range": time_range,
        "range_label": RANGE_LABELS[time_range],
        "ranges": [(value, RANGE_LABELS[value]) for value in RANGES],
        "summary": summary,
        "kpis": kpi_cards(summary, stats),
        "volume": charts.volume_chart(chart_data["generation_volume"], time_range),
        "success": charts.success_chart(chart_data["performance"], time_range),
        "top_loras": charts.top_loras_chart(chart_data["lora_usage"]),
        "health": stats["system_health"],
        "backends": backend_health(cached_backend_entries(backend_rows())),
        "recent_jobs": recent,
        "running_jobs": running,
        "insights": summary.get("performance_insights", []),
        "data_script": json_script({"summary": summary, "stats": stats}, "dashboard-data", encoder=JSONEncoder),
        "progress_socket": PROGRESS_SOCKET if served_over_asgi(request) else "",
    }


def served_over_asgi(request: HttpRequest) -> bool:
    """Whether an ASGI server (which also serves the WebSocket) delivered the request: Django's ASGI handler, or the
    WSGI pool ``loraforge.asgi`` runs HTTP on (``loraforge.wsgi_pool`` puts the ASGI scope in the
    environ). Under a plain WSGI server
    the page offers no socket, so the browser never logs a refused connection."""
    return isinstance(request, ASGIRequest) or "asgi.scope" in request.META


def percent(value: float | None) -> str:
    """``97.5%`` (one decimal) or ``—`` when undefined."""
    return DASH if value is None else f"{value:.1f}%"


def seconds(value: float | None) -> str:
    """``12.3 s`` or ``—`` when undefined."""
    return DASH if value is None else f"{value:.1f} s"


def signed_change(value: float | None, *, better: str, worse: str) -> tuple[str, str]:
    """A hint such as ``▲ 12.5% vs previous`` and its tone; empty when the change is undefined."""
    if value is None:
        return "", ""
    if value == 0:
        return "No change vs previous", ""
    arrow, tone = ("▲", better) if value > 0 else ("▼", worse)
    return f"{arrow} {abs(value):.1f}% vs previous", tone


def kpi_cards(summary: dict[str, Any], stats: dict[str, Any]) -> list[Kpi]:
    """The seven KPI cards of SPEC 9.2 with their exact value formats; hints add context."""
    kpis, counts = summary["kpis"], stats["stats"]
    growth, growth_tone = signed_change(kpis.get("generation_growth"), better="good", worse="bad")
    faster = kpis.get("time_improvement")
    speed = "" if faster is None else f"{abs(faster):.1f}% {'faster' if faster >= 0 else 'slower'}"
    finished = f"{kpis['total_succeeded']} ok · {kpis['total_failed']} failed"
    return [
        Kpi("total_generations", "Generations", str(kpis["total_generations"]), growth, growth_tone),
        Kpi("success_rate", "Success rate", percent(kpis["success_rate"]), finished),
        Kpi("avg_generation_time", "Avg time", seconds(kpis["avg_generation_time"]), speed,
            "" if faster is None else ("good" if faster >= 0 else "bad")),
        Kpi("total_failed", "Failed", str(kpis["total_failed"]), f"{kpis['total_cancelled']} cancelled"),
        Kpi("active_loras", "Active LoRAs", f"{kpis['active_loras']} / {kpis['total_loras']}",
            f"{counts['active_share']}% active"),
        Kpi("active_jobs", "Active jobs", str(counts["active_jobs"]),
            f"Queue {stats['system_health']['queue_status']}"),
        Kpi("embeddings_coverage", "Embeddings", f"{counts['embeddings_coverage']}%",
            f"of {counts['total_loras']} adapters"),
    ]  # fmt: skip
