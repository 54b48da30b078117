"""REST endpoints of the deliveries app: ``POST /compose`` (SPEC 5.3) and ``/deliveries`` (SPEC 5.4)."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from adapters.composition import Composition, prompt_compose_request
from adapters.selectors import catalogue_version
from deliveries.compose_serializers import ComposeRequestSerializer, ComposeResponseSerializer, composition_payload
from deliveries.filters import DeliveryJobFilterSet
from deliveries.models import PROMPT_MAX_LENGTH, DeliveryJob, DeliveryOrigin
from deliveries.representation import DeliverySerializer, delivery_representation, with_links
from deliveries.serializers import (
    DeliveryCreatedSerializer,
    DeliveryCreateSerializer,
    DeliveryEnvelopeSerializer,
    DeliveryTarget,
    compose_target,
)
from deliveries.services import (
    COMPOSED_PROMPT_TOO_LONG,
    AdapterLink,
    delivery_job_cancel,
    delivery_job_create,
    links_from_composition,
)
from loraforge.jobs.serializers import JobCancelResultSerializer
from loraforge.pagination import JobPagination
from loraforge.response_cache import cached_json
from loraforge.schema import CONFLICT
from loraforge.views import UUIDLookupMixin

EMPTY_PROMPT = "Composed prompt is empty; nothing to deliver"
DELIVERY_NOT_FOUND = "Delivery not found"
DELIVERY_CANCELLED = "Delivery job cancelled"


def _create(
    target: DeliveryTarget, *, prompt: str, created_via: str, links: list[AdapterLink] | None = None
) -> DeliveryJob:
    return delivery_job_create(
        mode=target.mode,
        prompt=prompt,
        params=target.params,
        created_via=created_via,
        requested_backend=target.requested_backend,
        links=links,
        backend_field=target.backend_field,
    )


def _deliver_composition(delivery: dict[str, Any], composition: Composition) -> dict[str, Any]:
    if not composition.prompt:
        raise ValidationError({"non_field_errors": [EMPTY_PROMPT]})
    if len(composition.prompt) > PROMPT_MAX_LENGTH:
        raise ValidationError({"non_field_errors": [COMPOSED_PROMPT_TOO_LONG]})
    job = _create(
        compose_target(delivery).with_prompt(composition.prompt),
        prompt=composition.prompt,
        created_via=DeliveryOrigin.COMPOSE,
        links=links_from_composition(composition.adapters),
    )
    return {"id": job.pk, "kind": job.kind, "status": job.status}


class ComposeView(APIView):
    @extend_schema(
        request=ComposeRequestSerializer,
        responses={200: ComposeResponseSerializer},
        summary="Compose a prompt from adapters and optionally deliver it",
    )
    def post(self, request: Request) -> Response | HttpResponse:
        body = request.data
        if isinstance(body, dict) and body.get("delivery") is None:
            # A pure function of the body and the catalogue: answered from the versioned cache like adapter reads.
            key = json.dumps(body, sort_keys=True, separators=(",", ":"))
            return cached_json(
                request, cache="compose", version=catalogue_version(), key=key, respond=lambda: self.compose(body)
            )
        return self.compose(body)

    def compose(self, body: Any) -> Response:
        serializer = ComposeRequestSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        composition = prompt_compose_request(data)
        delivery = None if data["delivery"] is None else _deliver_composition(data["delivery"], composition)
        return Response(composition_payload(composition, delivery))


class DeliveryJobViewSet(UUIDLookupMixin, mixins.ListModelMixin, viewsets.GenericViewSet[DeliveryJob]):
    """Delivery jobs (every delivery and generation), newest first, with their raw status."""

    serializer_class = DeliverySerializer
    filterset_class = DeliveryJobFilterSet
    pagination_class = JobPagination
    not_found_detail = DELIVERY_NOT_FOUND

    def get_queryset(self) -> Any:
        return with_links(DeliveryJob.objects.order_by("-created_at", "-id"))

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response([delivery_representation(job) for job in page or []])

    @extend_schema(request=DeliveryCreateSerializer, responses={201: DeliveryCreatedSerializer})
    def create(self, request: Request) -> Response:
        serializer = DeliveryCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        job = _create(data["target"], prompt=data["prompt"], created_via=DeliveryOrigin.DELIVERIES)
        return Response({"delivery_id": str(job.pk), "status": job.status}, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: DeliveryEnvelopeSerializer})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response({"delivery": delivery_representation(self.get_object())})

    @extend_schema(request=None, responses={200: JobCancelResultSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        job = delivery_job_cancel(job=self.get_object())
        return Response({"success": True, "status": job.status, "message": DELIVERY_CANCELLED})
