"""REST endpoints of the analytics reports (SPEC 5.7): thin adapters over ``analytics.selectors.reports``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.urls import URLPattern, re_path
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.selectors import reports
from analytics.serializers.reports import (
    AnalyticsErrorSerializer,
    AnalyticsInsightSerializer,
    AnalyticsStatsSerializer,
    AnalyticsSummarySerializer,
    AnalyticsTimeseriesSerializer,
    LoraUsageQuerySerializer,
    LoraUsageSerializer,
    ReportQuerySerializer,
)


def _options(serializer_class: type[serializers.Serializer[Any]], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ReportView(APIView):
    """``GET`` answers ``report(time_range=...)`` of ``analytics.selectors.reports``."""

    report: Callable[..., Any]

    def get(self, request: Request) -> Response:
        return Response(type(self).report(**_options(ReportQuerySerializer, request)))


def _documented(name: str, response: Any) -> Any:
    return extend_schema_view(
        get=extend_schema(
            operation_id=f"analytics_{name}", parameters=[ReportQuerySerializer], responses={200: response}
        )
    )


@_documented("stats", AnalyticsStatsSerializer)
class StatsView(ReportView):
    """KPIs of the window: volume, growth, durations, success rate, adapter counts (SPEC 5.7, 6.8)."""

    report = staticmethod(reports.analytics_stats)


@_documented("errors", AnalyticsErrorSerializer(many=True))
class ErrorsView(ReportView):
    """Failed generation jobs of the window grouped by error code, most frequent first."""

    report = staticmethod(reports.analytics_errors)


@_documented("timeseries", AnalyticsTimeseriesSerializer)
class TimeseriesView(ReportView):
    """Zero-filled buckets of the window: volume, performance, top adapters, resource usage."""

    report = staticmethod(reports.analytics_timeseries)


@_documented("insights", AnalyticsInsightSerializer(many=True))
class InsightsView(ReportView):
    """The insight rules that fire for the window, in their fixed order."""

    report = staticmethod(reports.analytics_insights)


@_documented("summary", AnalyticsSummarySerializer)
class SummaryView(ReportView):
    """KPIs, time series, error breakdown and insights of the window in one response."""

    report = staticmethod(reports.analytics_summary)


class LoraUsageView(APIView):
    """Adapters by the generation jobs of the window linked to them, then name."""

    @extend_schema(
        operation_id="analytics_lora_usage",
        parameters=[LoraUsageQuerySerializer],
        responses={200: LoraUsageSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        return Response(reports.analytics_lora_usage(**_options(LoraUsageQuerySerializer, request)))


def routes() -> list[URLPattern]:
    """The routes under ``/api/v1/analytics/`` (optional trailing slash, like every route)."""
    prefix = r"^analytics/"
    return [
        re_path(prefix + r"stats/?$", StatsView.as_view(), name="analytics-stats"),
        re_path(prefix + r"errors/?$", ErrorsView.as_view(), name="analytics-errors"),
        re_path(prefix + r"timeseries/?$", TimeseriesView.as_view(), name="analytics-timeseries"),
        re_path(prefix + r"insights/?$", InsightsView.as_view(), name="analytics-insights"),
        re_path(prefix + r"summary/?$", SummaryView.as_view(), name="analytics-summary"),
        re_path(prefix + r"lora-usage/?$", LoraUsageView.as_view(), name="analytics-lora-usage"),
    ]
