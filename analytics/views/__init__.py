"""REST endpoints of analytics, dashboard data and system status (SPEC 5.7, 5.8, 5.10)."""

from __future__ import annotations

from django.urls import URLPattern


def analytics_routes() -> list[URLPattern]:
    """Every route of the app, mounted once in ``loraforge/api.py``."""
    from analytics.views import dashboard, reports, status

    return [*reports.routes(), *dashboard.routes(), *status.routes()]
