"""Input of the generation endpoints (SPEC 5.1, 5.5.2): the generation query parameters and the bodies of
``/generation/generate``, ``/generation/compose-and-generate`` and ``/generation/queue-generation``."""

from __future__ import annotations

from typing import Any

from django import forms
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deliveries.compose_serializers import ComposeRequestSerializer
from deliveries.serializers import (
    PROMPT_MAX_LENGTH,
    GenerationParamsSerializer,
    ObjectSerializer,
)
from loraforge.fields import StrictCharField
from loraforge.filters import StrictBooleanFormField

GENERATION_MODES = ("immediate", "deferred")
RETURN_FORMATS = ("url", "base64", "file_path")
ANY_BACKEND = "sdnext"
QUERY_PARAMETERS = ("backend", "mode", "save_images", "return_format")
EMPTY_PROMPT = "prompt must not be empty"
DELIVERY_NOT_ALLOWED = "delivery is not allowed here"


def _choice(name: str, choices: tuple[str, ...], default: str) -> serializers.ChoiceField:
    message = f"{name} must be one of: {', '.join(choices)}"
    return serializers.ChoiceField(
        choices=choices, default=default, error_messages={"invalid_choice": message, "blank": message}
    )


class QueryBooleanField(serializers.BooleanField):
    """A query-string boolean: ``true/false/1/0/yes/no/on/off`` (SPEC 4.3)."""

    def to_internal_value(self, data: Any) -> bool:
        try:
            value = StrictBooleanFormField().clean(data)
        except forms.ValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from None
        return bool(value)


class GenerationQuerySerializer(serializers.Serializer[Any]):
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
