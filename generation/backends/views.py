"""REST endpoints of generation backends (SPEC 5.5.1): thin adapters around ``generation.backends.services``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from generation.backends import services
from generation.backends.selectors import any_backend_enabled, backends_for_list
from generation.backends.serializers import (
    GenerationBackendCreateSerializer,
    GenerationBackendEnvelopeSerializer,
    GenerationBackendListSerializer,
    GenerationBackendSerializer,
    GenerationBackendUpdateSerializer,
)
from generation.models import GenerationBackend
from loraforge.schema import CONFLICT
from loraforge.views import UUIDLookupMixin

BACKEND_NOT_FOUND = "Backend not found"


class GenerationBackendViewSet(UUIDLookupMixin, viewsets.GenericViewSet[GenerationBackend]):
    queryset = GenerationBackend.objects.all()
    serializer_class = GenerationBackendSerializer
    pagination_class = None
    filter_backends = ()
    not_found_detail = BACKEND_NOT_FOUND

    def _backend_response(self, backend: GenerationBackend, code: int = status.HTTP_200_OK) -> Response:
        return Response({"backend": GenerationBackendSerializer(backend).data}, status=code)

    @extend_schema(responses={200: GenerationBackendListSerializer})
    def list(self, request: Request) -> Response:
        """Health values as last checked (cache/row); no live check is made here."""
        backends = list(backends_for_list())
        body = {
            "sdnext": any_backend_enabled(backends),
            "backends": GenerationBackendSerializer(backends, many=True).data,
        }
        return Response(body)

    @extend_schema(request=GenerationBackendCreateSerializer, responses={201: GenerationBackendEnvelopeSerializer})
    def create(self, request: Request) -> Response:
        serializer = GenerationBackendCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        backend = services.backend_create(fields=serializer.validated_data)
        return self._backend_response(backend, code=status.HTTP_201_CREATED)

    @extend_schema(responses={200: GenerationBackendEnvelopeSerializer})
    def retrieve(self, request: Request, pk: str) -> Response:
        return self._backend_response(self.get_object())

    @extend_schema(request=GenerationBackendUpdateSerializer, responses={200: GenerationBackendEnvelopeSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        backend = self.get_object()
        serializer = GenerationBackendUpdateSerializer(data=request.data, context={"backend": backend})
        serializer.is_valid(raise_exception=True)
        backend = services.backend_update(backend=backend, changes=serializer.validated_data)
        return self._backend_response(backend)

    @extend_schema(responses={204: None, 409: CONFLICT})
    def destroy(self, request: Request, pk: str) -> Response:
        services.backend_delete(backend=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: GenerationBackendEnvelopeSerializer})
    @action(detail=True, methods=["post"])
    def check(self, request: Request, pk: str) -> Response:
        """A live health check of the backend (bypasses the cache)."""
        backend = services.backend_check(backend=self.get_object(), live=True)
        return self._backend_response(backend)
