"""``POST /export/estimate`` and ``POST /export`` (SPEC 5.9): thin adapters over ``backups.services.exports``.

Both only read, but they are POSTs, and a read-only API key may not POST anything (SPEC 4.2; compose and
``recommendations/for-prompt``, which write nothing either, answer it 403 too): exporting needs a key that may
write, or a staff session."""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from django.urls import URLPattern, URLResolver, re_path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backups.archive.format import ArchiveOptions
from backups.serializers.exports import ExportConfigSerializer, ExportEstimateSerializer, archive_options
from backups.services.exports import (
    ExportTooLarge,
    export_check_size,
    export_estimate_body,
    export_file_name,
    export_stream,
)

ZIP_RESPONSE = OpenApiResponse(
    response=OpenApiTypes.BINARY,
    description="The archive (SPEC 6.10.1), streamed with chunked transfer encoding (no Content-Length)",
)


def _config(request: Request) -> tuple[ArchiveOptions, dict[str, Any]]:
    serializer = ExportConfigSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = dict(serializer.validated_data)
    return archive_options(data), data


class ExportEstimateView(APIView):
    @extend_schema(
        request=ExportConfigSerializer,
        responses={200: ExportEstimateSerializer},
        summary="Estimate the size and duration of an export",
    )
    def post(self, request: Request) -> Response:
        options, _data = _config(request)
        return Response(export_estimate_body(options))


class ExportView(APIView):
    @extend_schema(
        request=ExportConfigSerializer,
        responses={(200, "application/zip"): ZIP_RESPONSE},
        summary="Download an export archive (streamed ZIP)",
    )
    def post(self, request: Request) -> StreamingHttpResponse:
        options, data = _config(request)
        try:
            export_check_size(options, max_size_mb=data["max_size_mb"])
        except ExportTooLarge as exc:
            raise serializers.ValidationError({"max_size_mb": [str(exc)]}) from None
        response = StreamingHttpResponse(export_stream(options), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{export_file_name()}"'
        response["Cache-Control"] = "no-store"
        return response


def routes() -> list[URLPattern | URLResolver]:
    return [
        re_path(r"^export/estimate/?$", ExportEstimateView.as_view(), name="export-estimate"),
        re_path(r"^export/?$", ExportView.as_view(), name="export"),
    ]
