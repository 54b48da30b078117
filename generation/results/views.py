"""REST endpoints of stored generation images (SPEC 5.5.4): thin adapters around ``generation.results.services``."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from generation.models import GenerationResult
from generation.results import services
from generation.results.filters import GenerationResultFilterSet, ResultPagination
from generation.results.serializers import (
    BulkDeleteResultSerializer,
    BulkFavoriteResultSerializer,
    BulkFavoriteSerializer,
    ExportRequestSerializer,
    FavoriteSerializer,
    RatingSerializer,
    ResultEnvelopeSerializer,
    ResultIdsSerializer,
    ResultReadSerializer,
)
from loraforge.media_views import FILE_RENDERERS, file_response, streaming_response
from loraforge.schema import NOT_FOUND
from loraforge.views import UUIDLookupMixin

NO_FORMAT = OpenApiParameter("format", exclude=True)


def _metadata(result: GenerationResult) -> dict[str, Any]:
    """``metadata.json`` of an exported result: ResultRead plus the job's parameters."""
    params = result.job.params if isinstance(result.job.params, dict) else {}
    return {**ResultReadSerializer(result).data, "params": params}


class GenerationResultViewSet(UUIDLookupMixin, mixins.ListModelMixin, viewsets.GenericViewSet[GenerationResult]):
    queryset = GenerationResult.objects.none()  # see get_queryset
    serializer_class = ResultReadSerializer
    filterset_class = GenerationResultFilterSet
    pagination_class = ResultPagination
    not_found_detail = services.RESULT_NOT_FOUND

    def get_queryset(self) -> QuerySet[GenerationResult]:
        return services.results_for_list()

    def count_all(self) -> int:
        """``total`` of the list envelope (the pagination asks for it)."""
        return services.results_total()

    def list_stats(self, queryset: QuerySet[GenerationResult]) -> dict[str, Any]:
        """``stats`` of the list envelope, over the filtered set (the pagination asks for it)."""
        return services.results_stats(queryset)

    def _result_response(self, result: GenerationResult) -> Response:
        return Response({"result": ResultReadSerializer(result).data})

    @extend_schema(responses={200: ResultEnvelopeSerializer})
    def retrieve(self, request: Request, pk: str) -> Response:
        return self._result_response(self.get_object())

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.result_delete(result=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=RatingSerializer, responses={200: ResultEnvelopeSerializer})
    @action(detail=True, methods=["put"])
    def rating(self, request: Request, pk: str) -> Response:
        result = self.get_object()
        serializer = RatingSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._result_response(services.result_rate(result=result, rating=serializer.validated_data["rating"]))

    @extend_schema(request=FavoriteSerializer, responses={200: ResultEnvelopeSerializer})
    @action(detail=True, methods=["put"])
    def favorite(self, request: Request, pk: str) -> Response:
        result = self.get_object()
        serializer = FavoriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        is_favorite = serializer.validated_data["is_favorite"]
        return self._result_response(services.result_set_favorite(result=result, is_favorite=is_favorite))

    @extend_schema(
        responses={(200, "image/*"): OpenApiTypes.BINARY},
        parameters=[NO_FORMAT],
        filters=False,
    )
    @action(detail=True, methods=["get"], renderer_classes=FILE_RENDERERS, filterset_class=None, pagination_class=None)
    def download(self, request: Request, pk: str) -> StreamingHttpResponse:
        result = self.get_object()
        handle = services.result_file_open(result)
        name = services.result_download_name(result)
        return file_response(request, handle, content_type=result.content_type, attachment_name=name)

    @extend_schema(request=BulkFavoriteSerializer, responses={200: BulkFavoriteResultSerializer})
    @action(detail=False, methods=["put"], url_path="bulk-favorite", filterset_class=None, pagination_class=None)
    def bulk_favorite(self, request: Request) -> Response:
        serializer = BulkFavoriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        outcome = services.results_set_favorite(ids=data["ids"], is_favorite=data["is_favorite"])
        return Response({"updated": len(outcome.ids), "ids": outcome.ids, "missing": outcome.missing})

    @extend_schema(request=ResultIdsSerializer, responses={200: BulkDeleteResultSerializer})
    @action(
        detail=False, methods=["delete", "post"], url_path="bulk-delete", filterset_class=None, pagination_class=None
    )
    def bulk_delete(self, request: Request) -> Response:
        serializer = ResultIdsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        outcome = services.results_delete(ids=serializer.validated_data["ids"])
        return Response({"deleted": len(outcome.ids), "missing": outcome.missing})

    @extend_schema(
        request=ExportRequestSerializer,
        responses={(200, "application/zip"): OpenApiTypes.BINARY, 404: NOT_FOUND},
        parameters=[NO_FORMAT],
    )
    @action(
        detail=False, methods=["post"], renderer_classes=FILE_RENDERERS, filterset_class=None, pagination_class=None
    )
    def export(self, request: Request) -> StreamingHttpResponse:
        """A ZIP of the images (and their metadata), streamed while it is written."""
        serializer = ExportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        results = services.results_for_export(data["ids"])
        chunks = services.results_export_stream(results, metadata_of=_metadata if data["include_metadata"] else None)
        response = streaming_response(request, chunks, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{services.export_file_name()}"'
        return response
