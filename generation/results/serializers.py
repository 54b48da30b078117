"""Output of the generation result endpoints (SPEC 5.1 ResultRead, 5.5.4) and the bodies of the result actions."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deliveries.models import DeliveryJob
from deliveries.representation import DeliveryAdapterSerializer, link_representation
from generation.models import GenerationResult
from loraforge.fields import StrictBooleanField, StrictSerializer, StrictUUIDField
from loraforge.media import media_url

RATING_ERROR = "rating must be an integer between 0 and 5"
IDS_LIMIT = 1000
NULLABLE_OBJECT = {"type": "object", "nullable": True, "additionalProperties": True}


def result_download_url(result: GenerationResult) -> str:
    return f"{settings.LORAFORGE_PUBLIC_URL}/api/v1/generation/results/{result.pk}/download"


def generation_params_of(job: DeliveryJob) -> dict[str, Any]:
    params = job.params if isinstance(job.params, dict) else {}
    generation_params = params.get("generation_params")
    return generation_params if isinstance(generation_params, dict) else {}


def generation_info_of(job: DeliveryJob) -> dict[str, Any] | None:
    info = job.result.get("generation_info") if isinstance(job.result, dict) else None
    return info if isinstance(info, dict) else None


# --- ResultRead -----------------------------------------------------------------------------------


class ResultReadSerializer(serializers.ModelSerializer[GenerationResult]):
    """One stored image with what its job asked for. Reads ``result.job`` and its ``adapter_links``: select and
    prefetch them (``generation.result_services.results_for_list``)."""

    job_id = serializers.UUIDField(read_only=True)
    prompt = serializers.CharField(source="job.prompt", read_only=True)
    negative_prompt = serializers.SerializerMethodField()
    status = serializers.CharField(source="job.normalised_status", read_only=True)
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()
    steps = serializers.SerializerMethodField()
    cfg_scale = serializers.SerializerMethodField()
    sampler_name = serializers.SerializerMethodField()
    backend = serializers.CharField(source="job.backend_name", read_only=True, allow_null=True)
    adapters = serializers.SerializerMethodField()
    generation_info = serializers.SerializerMethodField()
    finished_at = serializers.DateTimeField(source="job.finished_at", read_only=True, allow_null=True)

    class Meta:
        model = GenerationResult
        fields = [
            "id", "job_id", "index", "prompt", "negative_prompt", "status", "image_url", "thumbnail_url",
            "download_url", "content_type", "size_bytes", "width", "height", "steps", "cfg_scale", "sampler_name",
            "seed", "backend", "adapters", "generation_info", "infotext", "rating", "is_favorite",
            "rating_updated_at", "favorite_updated_at", "created_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field({"type": "string", "nullable": True})
    def get_negative_prompt(self, result: GenerationResult) -> str | None:
        return generation_params_of(result.job).get("negative_prompt")

    @extend_schema_field({"type": "string"})
    def get_image_url(self, result: GenerationResult) -> str:
        return media_url(result.file)

    @extend_schema_field({"type": "string", "description": "Equals image_url in v1 (no thumbnails)"})
    def get_thumbnail_url(self, result: GenerationResult) -> str:
        return media_url(result.file)

    @extend_schema_field({"type": "string"})
    def get_download_url(self, result: GenerationResult) -> str:
        return result_download_url(result)

    @extend_schema_field({"type": "integer", "nullable": True})
    def get_steps(self, result: GenerationResult) -> int | None:
        return generation_params_of(result.job).get("steps")

    @extend_schema_field({"type": "number", "nullable": True})
    def get_cfg_scale(self, result: GenerationResult) -> float | None:
        return generation_params_of(result.job).get("cfg_scale")

    @extend_schema_field({"type": "string", "nullable": True})
    def get_sampler_name(self, result: GenerationResult) -> str | None:
        return generation_params_of(result.job).get("sampler_name")

    @extend_schema_field(DeliveryAdapterSerializer(many=True))
    def get_adapters(self, result: GenerationResult) -> list[dict[str, Any]]:
        return [link_representation(link) for link in result.job.adapter_links.all()]

    @extend_schema_field(NULLABLE_OBJECT)
    def get_generation_info(self, result: GenerationResult) -> dict[str, Any] | None:
        return generation_info_of(result.job)


class ResultEnvelopeSerializer(serializers.Serializer[Any]):
    result = ResultReadSerializer()


# --- result actions --------------------------------------------------------------------------------


class RatingField(serializers.IntegerField):
    """0..5 or null; any other value (floats, strings, booleans, out of range) is one message."""

    default_error_messages = {"invalid": RATING_ERROR, "max_value": RATING_ERROR, "min_value": RATING_ERROR}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=0, max_value=5, allow_null=True, **kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class RatingSerializer(StrictSerializer):
    rating = RatingField()


class FavoriteSerializer(StrictSerializer):
    is_favorite = StrictBooleanField()


def _ids_field() -> serializers.ListField:
    return serializers.ListField(child=StrictUUIDField(), min_length=1, max_length=IDS_LIMIT)


class ResultIdsSerializer(StrictSerializer):
    ids = _ids_field()


class BulkFavoriteSerializer(StrictSerializer):
    ids = _ids_field()
    is_favorite = StrictBooleanField()


class ExportRequestSerializer(StrictSerializer):
    ids = _ids_field()
    include_metadata = StrictBooleanField(default=True)


class BulkFavoriteResultSerializer(serializers.Serializer[Any]):
    updated = serializers.IntegerField()
    ids = serializers.ListField(child=serializers.UUIDField())
    missing = serializers.ListField(child=serializers.UUIDField())


class BulkDeleteResultSerializer(serializers.Serializer[Any]):
    deleted = serializers.IntegerField()
    missing = serializers.ListField(child=serializers.UUIDField())
