"""REST endpoints of recommendations (SPEC 5.6): thin adapters over the services and selectors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.urls import URLPattern, re_path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from adapters.models import Adapter
from loraforge.errors import NotFound
from loraforge.schema import NOT_FOUND
from loraforge.views import UUID_RE
from recommendations import selectors
from recommendations.models import UserPreference
from recommendations.serializers import (
    EmbeddingsComputeRequestSerializer,
    EmbeddingsQueuedSerializer,
    EmbeddingStatusSerializer,
    FeedbackRequestSerializer,
    FeedbackSerializer,
    ForceQuerySerializer,
    ForPromptRequestSerializer,
    IndexRebuildSerializer,
    LimitQuerySerializer,
    PreferenceListSerializer,
    PreferenceRequestSerializer,
    PreferenceSerializer,
    RebuildQuerySerializer,
    RecommendationHealthSerializer,
    RecommendationResponseSerializer,
    RecommendationStatsSerializer,
    SimilarQuerySerializer,
    TriggerQuerySerializer,
)
from recommendations.services import embeddings, user_data

if TYPE_CHECKING:
    from types import ModuleType


def _engine() -> ModuleType:
    """``services.recommend``, imported with the first recommendation: it brings numpy and the index's parts, which
    a server that never recommends does not load (RSS at start-up)."""
    from recommendations.services import recommend

    return recommend


ADAPTER_NOT_FOUND = "Adapter not found"
PREFERENCES_LISTED = 1000


def _validated(serializer_class: type[serializers.Serializer[Any]], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _adapter(lora_id: str) -> Adapter:
    adapter = selectors.adapter_target(lora_id) if UUID_RE.fullmatch(lora_id) else None
    if adapter is None:
        raise NotFound(ADAPTER_NOT_FOUND)
    return adapter


def _queued(job_id: Any, count: int) -> Response:
    body = {"job_id": str(job_id), "kind": "embeddings", "status": "pending", "queued_count": count}
    return Response(body, status=status.HTTP_202_ACCEPTED)


class SimilarView(APIView):
    @extend_schema(parameters=[SimilarQuerySerializer], responses={200: RecommendationResponseSerializer})
    def get(self, request: Request, lora_id: str) -> Response:
        options = _validated(SimilarQuerySerializer, request.query_params)
        options.pop("weight_artistic", None)
        options.pop("weight_technical", None)
        return Response(_engine().recommend_similar(adapter=_adapter(lora_id), **options))


class ForPromptView(APIView):
    @extend_schema(request=ForPromptRequestSerializer, responses={200: RecommendationResponseSerializer})
    def post(self, request: Request) -> Response:
        options = _validated(ForPromptRequestSerializer, request.data)
        options["active_loras"] = [str(adapter_id) for adapter_id in options["active_loras"]]
        return Response(_engine().recommend_for_prompt(**options))


class ByTriggerView(APIView):
    @extend_schema(parameters=[TriggerQuerySerializer], responses={200: RecommendationResponseSerializer})
    def get(self, request: Request) -> Response:
        options = _validated(TriggerQuerySerializer, request.query_params)
        return Response(_engine().recommend_by_trigger(**options))


class WorksWellWithView(APIView):
    @extend_schema(parameters=[LimitQuerySerializer], responses={200: RecommendationResponseSerializer})
    def get(self, request: Request, lora_id: str) -> Response:
        options = _validated(LimitQuerySerializer, request.query_params)
        return Response(_engine().recommend_works_well_with(adapter=_adapter(lora_id), **options))


class FeedbackView(APIView):
    @extend_schema(request=FeedbackRequestSerializer, responses={201: FeedbackSerializer, 404: NOT_FOUND})
    def post(self, request: Request) -> Response:
        data = _validated(FeedbackRequestSerializer, request.data)
        feedback = user_data.feedback_create(
            session_id=data["session_id"],
            adapter_id=data["recommended_lora_id"],
            feedback_type=data["feedback_type"],
            feedback_reason=data["feedback_reason"],
            implicit_signal=data["implicit_signal"],
        )
        return Response(FeedbackSerializer(feedback).data, status=status.HTTP_201_CREATED)


class PreferencesView(APIView):
    @extend_schema(responses={200: PreferenceListSerializer})
    def get(self, request: Request) -> Response:
        rows = UserPreference.objects.order_by("preference_type", "preference_value")[:PREFERENCES_LISTED]
        return Response({"items": PreferenceSerializer(rows, many=True).data})

    @extend_schema(
        request=PreferenceRequestSerializer, responses={200: PreferenceSerializer, 201: PreferenceSerializer}
    )
    def post(self, request: Request) -> Response:
        preference, created = user_data.preference_upsert(**_validated(PreferenceRequestSerializer, request.data))
        return Response(
            PreferenceSerializer(preference).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class PreferenceView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, preference_id: str) -> Response:
        if not UUID_RE.fullmatch(preference_id):
            raise NotFound(user_data.PREFERENCE_NOT_FOUND)
        user_data.preference_delete(preference_id=preference_id)  # type: ignore[arg-type]
        return Response(status=status.HTTP_204_NO_CONTENT)


class StatsView(APIView):
    @extend_schema(responses={200: RecommendationStatsSerializer})
    def get(self, request: Request) -> Response:
        return Response(selectors.recommendation_stats())


class HealthView(APIView):
    @extend_schema(responses={200: RecommendationHealthSerializer})
    def get(self, request: Request) -> Response:
        return Response(selectors.recommendation_health())


class EmbeddingsComputeView(APIView):
    @extend_schema(request=EmbeddingsComputeRequestSerializer, responses={202: EmbeddingsQueuedSerializer})
    def post(self, request: Request) -> Response:
        data = _validated(EmbeddingsComputeRequestSerializer, request.data)
        ids = [str(adapter_id) for adapter_id in dict.fromkeys(data["adapter_ids"])]
        unknown = embeddings.unknown_adapter_ids(ids)
        if unknown:
            raise serializers.ValidationError({"adapter_ids": [f"Unknown adapter ids: {', '.join(unknown)}"]})
        job, count = embeddings.embeddings_job_start(
            adapter_ids=ids, force=data["force_recompute"], compute_all=data["compute_all"],
            batch_size=data["batch_size"],
        )  # fmt: skip
        return _queued(job.pk, count)


class EmbeddingStatusView(APIView):
    @extend_schema(responses={200: EmbeddingStatusSerializer})
    def get(self, request: Request, lora_id: str) -> Response:
        return Response(selectors.embedding_status(_adapter(lora_id)))


class EmbeddingComputeView(APIView):
    @extend_schema(
        operation_id="recommendations_embedding_compute_one",
        request=None,
        parameters=[ForceQuerySerializer],
        responses={202: EmbeddingsQueuedSerializer},
    )
    def post(self, request: Request, lora_id: str) -> Response:
        options = _validated(ForceQuerySerializer, request.query_params)
        adapter = _adapter(lora_id)
        job, count = embeddings.embeddings_job_start(adapter_ids=[str(adapter.pk)], force=options["force_recompute"])
        return _queued(job.pk, count)


class IndexRebuildView(APIView):
    @extend_schema(request=None, parameters=[RebuildQuerySerializer], responses={200: IndexRebuildSerializer})
    def post(self, request: Request) -> Response:
        options = _validated(RebuildQuerySerializer, request.query_params)
        return Response(_engine().index_rebuild(force=options["force"]))


LORA_ID = OpenApiParameter("lora_id", str, OpenApiParameter.PATH, description="The adapter's id (UUID)")


def recommendation_routes() -> list[URLPattern]:
    """The routes under ``/api/v1/recommendations/`` (optional trailing slash, like every route)."""
    prefix = r"^recommendations/"
    return [
        re_path(prefix + r"similar/(?P<lora_id>[^/]+)/?$", SimilarView.as_view(), name="reco-similar"),
        re_path(prefix + r"for-prompt/?$", ForPromptView.as_view(), name="reco-for-prompt"),
        re_path(prefix + r"by-trigger/?$", ByTriggerView.as_view(), name="reco-by-trigger"),
        re_path(prefix + r"works-well-with/(?P<lora_id>[^/]+)/?$", WorksWellWithView.as_view(), name="reco-cousage"),
        re_path(prefix + r"feedback/?$", FeedbackView.as_view(), name="reco-feedback"),
        re_path(prefix + r"preferences/?$", PreferencesView.as_view(), name="reco-preferences"),
        re_path(prefix + r"preferences/(?P<preference_id>[^/]+)/?$", PreferenceView.as_view(), name="reco-preference"),
        re_path(prefix + r"stats/?$", StatsView.as_view(), name="reco-stats"),
        re_path(prefix + r"health/?$", HealthView.as_view(), name="reco-health"),
        re_path(prefix + r"embeddings/compute/?$", EmbeddingsComputeView.as_view(), name="reco-embeddings-compute"),
        re_path(
            prefix + r"embeddings/(?P<lora_id>[^/]+)/compute/?$", EmbeddingComputeView.as_view(),
            name="reco-embedding-compute",
        ),
        re_path(prefix + r"embeddings/(?P<lora_id>[^/]+)/?$", EmbeddingStatusView.as_view(), name="reco-embedding"),
        re_path(prefix + r"index/rebuild/?$", IndexRebuildView.as_view(), name="reco-index-rebuild"),
    ]  # fmt: skip
