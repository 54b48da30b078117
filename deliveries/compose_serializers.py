"""Input and output shapes of ``POST /compose`` (SPEC 5.3)."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from adapters.composition import Composition
from adapters.models import WEIGHT_MAX, WEIGHT_MIN
from deliveries.serializers import ComposeDeliverySerializer
from loraforge.fields import StrictBooleanField, StrictCharField, StrictFloatField, StrictSerializer, StrictUUIDField

PREFIX_MAX_LENGTH = 5_000
ADAPTER_IDS_LIMIT = 200


class WeightOverridesField(serializers.DictField):
    """``{uuid: number}`` with numbers in the adapter weight range; keys become ``UUID``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=StrictFloatField(min_value=WEIGHT_MIN, max_value=WEIGHT_MAX), **kwargs)

    def to_internal_value(self, data: Any) -> dict[uuid.UUID, float]:
        values = super().to_internal_value(data)
        overrides: dict[uuid.UUID, float] = {}
        errors: dict[str, list[str]] = {}
        for key, weight in values.items():
            try:
                overrides[uuid.UUID(key)] = weight
            except ValueError:
                errors[key] = ["Must be a valid UUID."]
        if errors:
            raise serializers.ValidationError(errors)
        return overrides


def _prompt_part() -> StrictCharField:
    return StrictCharField(max_length=PREFIX_MAX_LENGTH, allow_blank=True, allow_null=True, default=None)


class ComposeRequestSerializer(StrictSerializer):
    """Body of ``POST /compose`` (SPEC 5.3)."""

    prefix = _prompt_part()
    suffix = _prompt_part()
    include_triggers = StrictBooleanField(default=False)
    adapter_ids = serializers.ListField(
        child=StrictUUIDField(), max_length=ADAPTER_IDS_LIMIT, allow_null=True, default=None
    )
    weight_overrides = WeightOverridesField(default=dict)
    delivery = ComposeDeliverySerializer(allow_null=True, default=None)


class ComposedAdapterSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    sdnext_name = serializers.CharField()
    weight = serializers.FloatField()


@extend_schema_field({"type": "string", "pattern": "^(generation|delivery)$", "description": "Job kind"})
class DeliveryKindField(serializers.CharField):
    """``kind`` documented as a pattern: the same enum in a second component would collide with the other ``kind``
    enums in drf-spectacular's naming (a warning); the ``Delivery`` component keeps the enum."""


class DeliveryReferenceSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    kind = DeliveryKindField()
    status = serializers.CharField()


def composition_payload(composition: Composition, delivery: dict[str, Any] | None) -> dict[str, Any]:
    """``ComposeResponseSerializer``'s output, built directly: ``dataclasses.asdict`` deep-copies every adapter dict
    and DRF's nested serializers copy their fields per request (~40 % of an uncached compose). A test pins it to
    the serializer, which stays what the schema documents."""
    return {
        "prompt": composition.prompt,
        "tokens": list(composition.tokens),
        "triggers": list(composition.triggers),
        "warnings": list(composition.warnings),
        "adapters": [
            {
                "id": str(adapter["id"]),
                "name": adapter["name"],
                "sdnext_name": adapter["sdnext_name"],
                "weight": float(adapter["weight"]),
            }
            for adapter in composition.adapters
        ],
        "delivery": None
        if delivery is None
        else {"id": str(delivery["id"]), "kind": delivery["kind"], "status": delivery["status"]},
    }


class ComposeResponseSerializer(serializers.Serializer[Any]):
    prompt = serializers.CharField()
    tokens = serializers.ListField(child=serializers.CharField())
    triggers = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())
    adapters = ComposedAdapterSerializer(many=True)
    delivery = DeliveryReferenceSerializer(allow_null=True)
