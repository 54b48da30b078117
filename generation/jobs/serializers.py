"""Input and output of the generation job endpoints (SPEC 5.1, 5.5.2, 5.5.3): the generation query parameters,
the bodies of ``/generation/generate``, ``/generation/compose-and-generate`` and ``/generation/queue-generation``,
the SDNextGenerationResult and the job representations."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deliveries.compose_serializers import ComposeRequestSerializer
from deliveries.models import DeliveryJob
from deliveries.representation import DeliverySerializer
from deliveries.serializers import (
    PROMPT_MAX_LENGTH,
    GenerationParamsSerializer,
    ObjectSerializer,
)
from generation.results.serializers import ResultReadSerializer, generation_params_of
from loraforge.fields import CopiedFieldsSerializer, QueryBooleanField, StrictCharField

GENERATION_MODES = ("immediate", "deferred")
RETURN_FORMATS = ("url", "base64", "file_path")
ANY_BACKEND = "sdnext"
QUERY_PARAMETERS = ("backend", "mode", "save_images", "return_format")
EMPTY_PROMPT = "prompt must not be empty"
DELIVERY_NOT_ALLOWED = "delivery is not allowed here"
NORMALISED_STATUSES = "queued, processing, completed, failed or cancelled"


def _choice(name: str, choices: tuple[str, ...], default: str) -> serializers.ChoiceField:
    message = f"{name} must be one of: {', '.join(choices)}"
    return serializers.ChoiceField(
        choices=choices, default=default, error_messages={"invalid_choice": message, "blank": message}
    )


class GenerationQuerySerializer(CopiedFieldsSerializer):
    """The generation query parameters; ``context["default_mode"]`` is ``deferred`` for queue-generation."""

    backend = serializers.CharField(
        max_length=64, default=ANY_BACKEND, help_text="`sdnext` (any enabled backend) or a backend name"
    )
    mode = _choice("mode", GENERATION_MODES, "immediate")
    save_images = QueryBooleanField(default=True, help_text="Recorded only: LoRAForge always stores the images")
    return_format = _choice("return_format", RETURN_FORMATS, "url")

    def to_internal_value(self, data: Any) -> Any:
        values = {name: data[name] for name in QUERY_PARAMETERS if data.get(name) not in (None, "")}
        if "mode" not in values and "default_mode" in self.context:
            values["mode"] = self.context["default_mode"]
        return super().to_internal_value(values)


class GenerateRequestSerializer(GenerationParamsSerializer):
    """GenerationParams with a required, non-blank prompt (``/generate`` and ``/queue-generation``)."""

    prompt = StrictCharField(max_length=PROMPT_MAX_LENGTH, error_messages={"blank": EMPTY_PROMPT})


@extend_schema_field({"type": "object", "nullable": True, "description": "Not allowed here; absent or null"})
class NoDeliveryField(serializers.Field):
    """``compose_request.delivery``: only ``null`` (the composed prompt is generated here, not delivered)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, allow_null=True, default=None, **kwargs)

    def to_internal_value(self, data: Any) -> None:
        raise serializers.ValidationError(DELIVERY_NOT_ALLOWED)

    def to_representation(self, value: Any) -> None:
        return None


class NestedComposeRequestSerializer(ObjectSerializer, ComposeRequestSerializer):
    """``compose_request``: the body of ``POST /compose`` without a delivery."""

    delivery = NoDeliveryField()  # type: ignore[assignment]


class ComposeAndGenerateRequestSerializer(ObjectSerializer):
    """Body of ``POST /generation/compose-and-generate``; the composed prompt replaces
    ``generation_params.prompt``."""

    compose_request = NestedComposeRequestSerializer(required=False)
    generation_params = GenerationParamsSerializer(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for name, serializer_class in (
            ("compose_request", NestedComposeRequestSerializer),
            ("generation_params", GenerationParamsSerializer),
        ):
            if name not in attrs:
                defaults = serializer_class(data={})
                defaults.is_valid(raise_exception=True)
                attrs[name] = dict(defaults.validated_data)
        return attrs


# --- generation job output ------------------------------------------------------------------------


class SDNextGenerationResultSerializer(serializers.Serializer[Any]):
    """Documentation of ``generation.job_services.generation_result_payload``."""

    job_id = serializers.UUIDField()
    status = serializers.CharField(help_text=NORMALISED_STATUSES)
    images = serializers.ListField(child=serializers.CharField(), allow_null=True)
    progress = serializers.FloatField()
    progress_percent = serializers.IntegerField()
    current_step = serializers.IntegerField(allow_null=True)
    total_steps = serializers.IntegerField(allow_null=True)
    eta_seconds = serializers.FloatField(allow_null=True)
    error_message = serializers.CharField(allow_null=True)
    error_code = serializers.CharField(allow_null=True)
    generation_info = serializers.DictField(allow_null=True)
    warnings = serializers.ListField(child=serializers.CharField())
    backend = serializers.CharField(allow_null=True)


class CompositionSummarySerializer(serializers.Serializer[Any]):
    prompt = serializers.CharField()
    tokens = serializers.ListField(child=serializers.CharField())
    triggers = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())


class ComposedGenerationResultSerializer(SDNextGenerationResultSerializer):
    composition = CompositionSummarySerializer()


class QueuedGenerationSerializer(serializers.Serializer[Any]):
    delivery_id = serializers.UUIDField()
    job_id = serializers.UUIDField()
    status = serializers.CharField()


class GenerationJobSerializer(DeliverySerializer):
    """``Delivery`` with the normalised status, plus the raw status and the job's stored images."""

    kind = serializers.CharField(help_text="`generation`")  # type: ignore[assignment]
    status = serializers.CharField(help_text=NORMALISED_STATUSES)
    raw_status = serializers.CharField(help_text="pending, running, succeeded, failed or cancelled")
    results = ResultReadSerializer(many=True)


class GenerationJobEnvelopeSerializer(serializers.Serializer[Any]):
    delivery = GenerationJobSerializer()


class GenerationCancelResultSerializer(serializers.Serializer[Any]):
    success = serializers.BooleanField()
    status = serializers.CharField()
    message = serializers.CharField()


class ActiveGenerationJobSerializer(serializers.ModelSerializer[DeliveryJob]):
    """An item of ``GET /generation/jobs/active`` with its camelCase compatibility keys."""

    jobId = serializers.UUIDField(source="pk", read_only=True)
    status = serializers.CharField(source="normalised_status", read_only=True)
    progress_percent = serializers.IntegerField(read_only=True)
    params = serializers.SerializerMethodField()
    backend = serializers.CharField(source="backend_name", read_only=True, allow_null=True)
    startTime = serializers.DateTimeField(source="started_at", read_only=True, allow_null=True)
    result = serializers.JSONField(read_only=True)

    class Meta:
        model = DeliveryJob
        fields = [
            "id", "jobId", "prompt", "status", "progress", "progress_percent", "current_step", "total_steps",
            "eta_seconds", "message", "error", "params", "backend", "created_at", "startTime", "finished_at",
            "result",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field({"type": "object", "additionalProperties": True})
    def get_params(self, job: DeliveryJob) -> dict[str, Any]:
        params = job.params if isinstance(job.params, dict) else {}
        return {**generation_params_of(job), "backend": params.get("backend", job.requested_backend)}
