"""``GET /system/status`` (SPEC 5.10): always 200, answered within 3 s whatever hangs."""

from __future__ import annotations

from django.urls import URLPattern, re_path
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.serializers.status import SystemStatusSerializer
from analytics.status import system_status


class SystemStatusView(APIView):
    @extend_schema(responses={200: SystemStatusSerializer})
    def get(self, request: Request) -> Response:
        return Response(SystemStatusSerializer(system_status()).data)


def routes() -> list[URLPattern]:
    return [re_path(r"^system/status/?$", SystemStatusView.as_view(), name="system-status")]
