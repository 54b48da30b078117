"""REST endpoints of the adapter catalogue (SPEC 5.2): thin adapters around services."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from adapters import services
from adapters.filters import AdapterFilterSet
from adapters.models import Adapter
from adapters.previews import PreviewRenderer, adapter_preview
from adapters.scan_serializers import RescanResultSerializer, ScanAcceptedSerializer, ScanRequestSerializer
from adapters.scan_service import scan_start
from adapters.scanner.engine import adapter_rescan
from adapters.selectors import adapter_by_id, adapter_total, adapters_for_list, catalogue_version, tag_counts
from adapters.serializers import (
    ActivateSerializer,
    AdapterCreateSerializer,
    AdapterDetailEnvelopeSerializer,
    AdapterDetailSerializer,
    AdapterEnvelopeSerializer,
    AdapterSerializer,
    AdapterUpdateSerializer,
    BulkActionSerializer,
    BulkResultSerializer,
    TagsSerializer,
)
from loraforge.errors import NotFound
from loraforge.models.jobs import JobOrigin
from loraforge.query import query_bool, query_int
from loraforge.renderers import UTF8JSONRenderer
from loraforge.response_cache import cached_json
from loraforge.schema import CONFLICT
from loraforge.views import UUIDLookupMixin

NO_PREVIEW = "Adapter has no preview"
PREVIEW_CACHE_CONTROL = "private, max-age=300"


class AdapterViewSet(UUIDLookupMixin, mixins.ListModelMixin, viewsets.GenericViewSet[Adapter]):
    queryset = Adapter.objects.all()
    serializer_class = AdapterSerializer
    filterset_class = AdapterFilterSet
    not_found_detail = "Adapter not found"

    def get_queryset(self) -> Any:
        return adapters_for_list() if self.action == "list" else Adapter.objects.all()

    def _cached(self, request: Request, key: Hashable, respond: Callable[[], Response]) -> Response | HttpResponse:
        """Serve a JSON read from the versioned response cache; any other format renders normally."""
        return cached_json(request, cache="adapters", version=catalogue_version(), key=key, respond=respond)

    def fetch_object(self, pk: str) -> Adapter | None:
        return adapter_by_id(pk)

    def count_all(self) -> int | None:
        """``total`` of the list envelope, from the trigger-kept row count (EnvelopePagination asks for it)."""
        return adapter_total()

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        query = tuple(sorted((name, tuple(values)) for name, values in request.query_params.lists()))
        return self._cached(request, ("list", query), lambda: super(AdapterViewSet, self).list(request))

    def _adapter_response(self, adapter: Adapter, *, detail: bool = False, code: int = 200) -> Response:
        serializer_class = AdapterDetailSerializer if detail else AdapterSerializer
        return Response({"adapter": serializer_class(adapter).data}, status=code)

    @extend_schema(request=AdapterCreateSerializer, responses={201: AdapterEnvelopeSerializer})
    def create(self, request: Request) -> Response:
        serializer = AdapterCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        file_path = fields.pop("file_path")
        adapter = services.adapter_create(file_path=file_path, fields=fields)
        return self._adapter_response(adapter, code=status.HTTP_201_CREATED)

    @extend_schema(responses={200: AdapterDetailEnvelopeSerializer})
    def retrieve(self, request: Request, pk: str) -> Any:
        return self._cached(
            request, ("detail", pk.lower()), lambda: self._adapter_response(self.get_object(), detail=True)
        )

    @extend_schema(request=AdapterUpdateSerializer, responses={200: AdapterEnvelopeSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        adapter = self.get_object()
        serializer = AdapterUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        adapter = services.adapter_update(adapter=adapter, changes=serializer.validated_data)
        return self._adapter_response(adapter)

    @extend_schema(
        parameters=[OpenApiParameter("exclude", bool, description="Exclude the file from later scans (default true)")],
        responses={204: None},
    )
    def destroy(self, request: Request, pk: str) -> Response:
        adapter = self.get_object()
        services.adapter_delete(adapter=adapter, exclude=query_bool(request, "exclude", True))
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _set_active(self, request: Request, active: bool) -> Response:
        adapter = self.get_object()
        ordinal: Any = services.UNSET
        if active:
            ordinal_query = query_int(request, "ordinal")
            query = {} if ordinal_query is None else {"ordinal": ordinal_query}
            serializer = ActivateSerializer(data={**query, **dict(request.data)})
            serializer.is_valid(raise_exception=True)
            ordinal = serializer.validated_data.get("ordinal", services.UNSET)
        adapter = services.adapter_set_active(adapter=adapter, active=active, ordinal=ordinal)
        return self._adapter_response(adapter)

    @extend_schema(
        request=ActivateSerializer,
        parameters=[OpenApiParameter("ordinal", int)],
        responses={200: AdapterEnvelopeSerializer},
    )
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str) -> Response:
        return self._set_active(request, True)

    @extend_schema(request=None, responses={200: AdapterEnvelopeSerializer})
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, pk: str) -> Response:
        return self._set_active(request, False)

    @extend_schema(request=BulkActionSerializer, responses={200: BulkResultSerializer})
    @action(detail=False, methods=["post"])
    def bulk(self, request: Request) -> Response:
        serializer = BulkActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        outcome = services.adapters_bulk(action=data["action"], ids=data["lora_ids"], exclude=data["exclude"])
        body = {
            "success": True,
            "action": outcome.action,
            "processed": len(outcome.ids),
            "ids": outcome.ids,
            "missing": outcome.missing,
        }
        return Response(body)

    @extend_schema(responses={200: TagsSerializer}, filters=False)
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None)
    def tags(self, request: Request) -> Response | HttpResponse:
        def respond() -> Response:
            counts = tag_counts()
            return Response({"tags": list(counts), "counts": counts})

        return self._cached(request, ("tags",), respond)

    @extend_schema(request=ScanRequestSerializer, responses={202: ScanAcceptedSerializer, 409: CONFLICT})
    @action(detail=False, methods=["post"])
    def scan(self, request: Request) -> Response:
        serializer = ScanRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = scan_start(request=serializer.scan_request(), created_via=JobOrigin.API)
        body = {"job_id": str(job.pk), "kind": job.kind, "status": job.status}
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=None,
        parameters=[OpenApiParameter("force_rehash", bool, description="Hash the file even if the cache is valid")],
        responses={200: RescanResultSerializer},
    )
    @action(detail=True, methods=["post"])
    def rescan(self, request: Request, pk: str) -> Response:
        force_rehash = query_bool(request, "force_rehash", False)
        adapter, item = adapter_rescan(adapter=self.get_object(), force_rehash=force_rehash)
        report = {"path": item.path, "status": item.status, "detail": item.detail}
        return Response({"adapter": AdapterSerializer(adapter).data, "report": report})

    @extend_schema(
        responses={(200, "image/*"): OpenApiTypes.BINARY},
        parameters=[OpenApiParameter("format", exclude=True)],
        filters=False,
    )
    @action(
        detail=True,
        methods=["get"],
        renderer_classes=[UTF8JSONRenderer, PreviewRenderer],
        filterset_class=None,
        pagination_class=None,
    )
    def preview(self, request: Request, pk: str) -> FileResponse:
        preview = adapter_preview(self.get_object())
        if preview is None:
            raise NotFound(NO_PREVIEW)
        try:
            handle = preview.path.open("rb")
        except OSError:  # vanished or unreadable since it was checked
            raise NotFound(NO_PREVIEW) from None
        response = FileResponse(handle, content_type=preview.content_type)
        response["Cache-Control"] = PREVIEW_CACHE_CONTROL
        return response
