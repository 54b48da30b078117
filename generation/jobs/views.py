"""Generation endpoints (SPEC 5.5.2, 5.5.3): generate, compose-and-generate, queue-generation, jobs, progress.

``/generate`` and ``/compose-and-generate`` are served by an asynchronous view (``waiting_view``): the DRF view
validates and creates the job (authentication, permissions, problem details and the schema are DRF's); the
wait of an immediate generation then happens on the event loop (``asyncio.sleep`` between reads of the job row
in a worker thread), so a waiting request never delays other requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.urls import URLPattern, re_path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deliveries.models import DeliveryJob, DeliveryOrigin
from deliveries.representation import delivery_representation
from deliveries.services import delivery_job_cancel
from generation.jobs import services as job_services
from generation.jobs.serializers import (
    ActiveGenerationJobSerializer,
    ComposeAndGenerateRequestSerializer,
    ComposedGenerationResultSerializer,
    GenerateRequestSerializer,
    GenerationCancelResultSerializer,
    GenerationJobEnvelopeSerializer,
    GenerationQuerySerializer,
    QueuedGenerationSerializer,
    SDNextGenerationResultSerializer,
)
from generation.jobs.services import GenerationOptions
from generation.results.serializers import ResultReadSerializer
from loraforge.errors import NotFound
from loraforge.query import query_int
from loraforge.schema import CONFLICT
from loraforge.views import UUID_RE, UUIDLookupMixin

JOB_NOT_FOUND = "Job not found"
GENERATION_CANCELLED = "Generation job cancelled"
ACTIVE_LIMIT_DEFAULT, ACTIVE_LIMIT_MAX = 50, 200
ACTIVE_LIMIT_ERROR = f"limit must be between 1 and {ACTIVE_LIMIT_MAX}"


def generation_options(request: Request, *, default_mode: str = "immediate") -> GenerationOptions:
    serializer = GenerationQuerySerializer(data=request.query_params, context={"default_mode": default_mode})
    serializer.is_valid(raise_exception=True)
    return GenerationOptions.from_query(serializer.validated_data)


def validated(serializer_class: type[serializers.Serializer[Any]], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def generation_job(pk: str) -> DeliveryJob:
    job = job_services.generation_job_by_id(pk) if UUID_RE.fullmatch(pk) else None
    if job is None:
        raise NotFound(JOB_NOT_FOUND)
    return job


class GenerationResponse(Response):
    """``SDNextGenerationResult`` (plus ``extra`` members) of a new job; ``waits`` when it is an immediate
    generation that ``waiting_view`` must wait for before answering."""

    def __init__(self, job: DeliveryJob, options: GenerationOptions, extra: dict[str, Any] | None = None) -> None:
        self.job = job
        self.return_format = options.return_format
        self.extra = extra or {}
        self.waits = options.mode == "immediate" and not job.is_terminal
        payload = job_services.generation_result_payload(job, return_format=options.return_format)
        super().__init__({**payload, **self.extra})

    async def wait(self) -> None:
        """Wait for the job (at most ``LORAFORGE_IMMEDIATE_WAIT_SECONDS``); the body becomes its final state."""
        timeout = float(settings.LORAFORGE_IMMEDIATE_WAIT_SECONDS)
        job = await job_services.generation_job_wait(self.job, timeout=timeout)
        payload = await job_services.generation_result_payload_async(job, return_format=self.return_format)
        self.data = {**payload, **self.extra}


def waiting_view(view_class: type[APIView]) -> Callable[..., Any]:
    """An asynchronous route callback around a DRF view: the view runs as Django would run it (in the
    request's thread), then an immediate generation is awaited on the event loop. ``cls``/``initkwargs``
    stay on the callback, so drf-spectacular documents the DRF view."""
    callback = view_class.as_view()
    run = sync_to_async(callback)

    async def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = await run(request, *args, **kwargs)
        if isinstance(response, GenerationResponse) and response.waits:
            await response.wait()
        return response

    view.__dict__.update({name: callback.__dict__[name] for name in ("cls", "initkwargs", "csrf_exempt")})
    view.__doc__ = view_class.__doc__
    return view


class GenerateView(APIView):
    """Generate images from a prompt (a ``generation`` job); ``mode=immediate`` waits for the result."""

    @extend_schema(
        request=GenerateRequestSerializer,
        parameters=[GenerationQuerySerializer],
        responses={200: SDNextGenerationResultSerializer},
        summary="Generate images from a prompt",
    )
    def post(self, request: Request) -> Response:
        options = generation_options(request)
        params = validated(GenerateRequestSerializer, request.data)
        job = job_services.generation_job_create(params=params, options=options, created_via=DeliveryOrigin.GENERATE)
        return GenerationResponse(job, options)


class ComposeAndGenerateView(APIView):
    """Compose a prompt from adapters and generate images from it."""

    @extend_schema(
        request=ComposeAndGenerateRequestSerializer,
        parameters=[GenerationQuerySerializer],
        responses={200: ComposedGenerationResultSerializer},
        summary="Compose a prompt and generate images from it",
    )
    def post(self, request: Request) -> Response:
        options = generation_options(request)
        body = validated(ComposeAndGenerateRequestSerializer, request.data)
        composition = job_services.generation_compose(compose_request=body["compose_request"])
        job = job_services.composed_generation_create(
            composition=composition,
            params=body["generation_params"],
            options=options,
            created_via=DeliveryOrigin.GENERATE,
        )
        return GenerationResponse(job, options, {"composition": job_services.composition_summary(composition)})


class QueueGenerationView(APIView):
    """Queue a generation and answer at once (follow it by WebSocket or ``/generation/progress/{id}``)."""

    @extend_schema(
        request=GenerateRequestSerializer,
        parameters=[GenerationQuerySerializer],
        responses={202: QueuedGenerationSerializer},
        summary="Queue a generation",
    )
    def post(self, request: Request) -> Response:
        options = generation_options(request, default_mode="deferred")
        params = validated(GenerateRequestSerializer, request.data)
        job = job_services.generation_job_create(params=params, options=options, created_via=DeliveryOrigin.QUEUE)
        body = {"delivery_id": str(job.pk), "job_id": str(job.pk), "status": job.normalised_status}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class GenerationProgressView(APIView):
    """The job's state from the database (no SDNext call is made)."""

    @extend_schema(
        parameters=[OpenApiParameter("backend", str, description="Accepted and ignored (compatibility)")],
        responses={200: SDNextGenerationResultSerializer},
        summary="Progress of a generation job",
    )
    def get(self, request: Request, pk: str) -> Response:
        return Response(job_services.generation_result_payload(generation_job(pk)))


class GenerationJobViewSet(UUIDLookupMixin, viewsets.GenericViewSet[DeliveryJob]):
    queryset = job_services.generation_jobs()
    serializer_class = ActiveGenerationJobSerializer
    pagination_class = None
    filter_backends = ()
    not_found_detail = JOB_NOT_FOUND

    def fetch_object(self, pk: str) -> DeliveryJob | None:
        return job_services.generation_job_by_id(pk)

    @extend_schema(responses={200: GenerationJobEnvelopeSerializer})
    def retrieve(self, request: Request, pk: str) -> Response:
        job = job_services.generation_job_detail(self.lookup_id())
        if job is None:
            raise NotFound(JOB_NOT_FOUND)
        results = ResultReadSerializer(job.results.all(), many=True).data
        delivery = {**delivery_representation(job, normalised=True), "raw_status": job.status, "results": results}
        return Response({"delivery": delivery})

    @extend_schema(
        parameters=[OpenApiParameter("limit", int, description=f"1..{ACTIVE_LIMIT_MAX} (default 50)")],
        responses={200: ActiveGenerationJobSerializer(many=True)},
    )
    @action(detail=False, methods=["get"])
    def active(self, request: Request) -> Response:
        """Queued and processing generation jobs, most recently started first (a bare list)."""
        limit = query_int(request, "limit", ACTIVE_LIMIT_DEFAULT)
        if not 1 <= limit <= ACTIVE_LIMIT_MAX:
            raise serializers.ValidationError({"limit": [ACTIVE_LIMIT_ERROR]})
        jobs = job_services.generation_jobs_active(limit=limit)
        return Response(ActiveGenerationJobSerializer(jobs, many=True).data)

    @extend_schema(request=None, responses={200: GenerationCancelResultSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        job = delivery_job_cancel(job=self.get_object(), label=lambda current: current.normalised_status)
        return Response({"success": True, "status": job.normalised_status, "message": GENERATION_CANCELLED})


def generation_routes() -> list[URLPattern]:
    """The routes outside the viewsets (registered in ``loraforge.api``); trailing slash optional."""
    return [
        re_path(r"^generation/generate/?$", waiting_view(GenerateView), name="generation-generate"),
        re_path(
            r"^generation/compose-and-generate/?$",
            waiting_view(ComposeAndGenerateView),
            name="generation-compose-and-generate",
        ),
        re_path(r"^generation/queue-generation/?$", QueueGenerationView.as_view(), name="generation-queue"),
        re_path(r"^generation/progress/(?P<pk>[^/]+)/?$", GenerationProgressView.as_view(), name="generation-progress"),
    ]
