"""Dashboard data endpoints (SPEC 5.8): thin adapters over ``analytics.selectors.dashboard``."""

from __future__ import annotations

from django.urls import URLPattern, re_path
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.selectors.dashboard import activity_feed, dashboard_stats, featured_loras
from analytics.serializers.dashboard import ActivityItemSerializer, DashboardStatsSerializer, FeaturedLoraSerializer


class DashboardStatsView(APIView):
    @extend_schema(responses={200: DashboardStatsSerializer})
    def get(self, request: Request) -> Response:
        return Response(DashboardStatsSerializer(dashboard_stats()).data)


class FeaturedLorasView(APIView):
    @extend_schema(responses={200: FeaturedLoraSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(FeaturedLoraSerializer(featured_loras(), many=True).data)


class ActivityFeedView(APIView):
    @extend_schema(responses={200: ActivityItemSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(ActivityItemSerializer(activity_feed(), many=True).data)


def routes() -> list[URLPattern]:
    return [
        re_path(r"^dashboard/stats/?$", DashboardStatsView.as_view(), name="dashboard-stats"),
        re_path(r"^dashboard/featured-loras/?$", FeaturedLorasView.as_view(), name="dashboard-featured-loras"),
        re_path(r"^dashboard/activity-feed/?$", ActivityFeedView.as_view(), name="dashboard-activity-feed"),
    ]
