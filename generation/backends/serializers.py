"""Backend representations and input validation (SPEC 5.5.1). Passwords are write-only: no output has them."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from generation.models import (
    NAME_TAKEN,
    TIMEOUT_MAX,
    TIMEOUT_MIN,
    BackendKind,
    GenerationBackend,
    backend_name_error,
    normalize_backend_url,
)
from loraforge.fields import StrictBooleanField, StrictCharField, StrictIntegerField, StrictSerializer

NO_CHANGES = "No valid fields provided for update"
KIND_SCHEMA = {"type": "string", "pattern": "^sdnext$", "description": "Backend kind; only `sdnext` in v1"}


@extend_schema_field(KIND_SCHEMA)
class KindField(serializers.ChoiceField):
    """``sdnext`` only; documented without an enum component (``kind`` enums of other resources differ)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=BackendKind.choices, **kwargs)


class GenerationBackendSerializer(serializers.ModelSerializer[GenerationBackend]):
    kind = KindField(read_only=True)
    has_password = serializers.SerializerMethodField()
    version = serializers.SerializerMethodField()
    busy = serializers.SerializerMethodField()
    current_job_id = serializers.SerializerMethodField()

    class Meta:
        model = GenerationBackend
        fields = [
            "id", "name", "kind", "url", "username", "has_password", "enabled", "is_default", "timeout_seconds",
            "healthy", "last_checked_at", "last_error", "version", "busy", "current_job_id", "last_used_at",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field({"type": "boolean"})
    def get_has_password(self, backend: GenerationBackend) -> bool:
        return bool(backend.password)

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "description": "Kept keys of SDNext's /sdapi/v1/version: app, commit, branch, updated",
            "additionalProperties": True,
        }
    )
    def get_version(self, backend: GenerationBackend) -> dict[str, Any] | None:
        return backend.version_info or None

    @extend_schema_field({"type": "boolean", "description": "A job holds a live lease on the backend"})
    def get_busy(self, backend: GenerationBackend) -> bool:
        return backend.has_live_lease()

    @extend_schema_field({"type": "string", "format": "uuid", "nullable": True})
    def get_current_job_id(self, backend: GenerationBackend) -> str | None:
        job_id = backend.current_job_id
        return None if job_id is None else str(job_id)


class GenerationBackendEnvelopeSerializer(serializers.Serializer[Any]):
    backend = GenerationBackendSerializer()


class GenerationBackendListSerializer(serializers.Serializer[Any]):
    sdnext = serializers.BooleanField(help_text="true iff at least one enabled backend exists")
    backends = GenerationBackendSerializer(many=True)


# --- input --------------------------------------------------------------------------------


def _optional_text(max_length: int) -> StrictCharField:
    return StrictCharField(max_length=max_length, required=False, allow_null=True, allow_blank=True)


class GenerationBackendWriteSerializer(StrictSerializer):
    """Fields of POST and PATCH. ``context["backend"]`` is the row being edited (PATCH), for the name check."""

    name = StrictCharField(trim_whitespace=False, allow_blank=True)
    url = StrictCharField(max_length=500, trim_whitespace=False, allow_blank=True)
    username = _optional_text(150)
    password = StrictCharField(
        max_length=500, required=False, allow_null=True, allow_blank=True, trim_whitespace=False, write_only=True
    )
    enabled = StrictBooleanField(required=False)
    timeout_seconds = StrictIntegerField(min_value=TIMEOUT_MIN, max_value=TIMEOUT_MAX, required=False, allow_null=True)

    read_only_names = frozenset(GenerationBackendSerializer.Meta.fields)

    def validate_name(self, value: str) -> str:
        error = backend_name_error(value)
        if error:
            raise serializers.ValidationError(error)
        taken = GenerationBackend.objects.filter(name=value)
        current = self.context.get("backend")
        if current is not None:
            taken = taken.exclude(pk=current.pk)
        if taken.exists():
            raise serializers.ValidationError(NAME_TAKEN)
        return value

    def validate_url(self, value: str) -> str:
        try:
            return normalize_backend_url(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_username(self, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    def validate_password(self, value: str | None) -> str | None:
        return value or None  # "" clears like null


class GenerationBackendCreateSerializer(GenerationBackendWriteSerializer):
    kind = KindField(required=False)
    enabled = StrictBooleanField(required=False, default=True)


class GenerationBackendUpdateSerializer(GenerationBackendWriteSerializer):
    name = StrictCharField(trim_whitespace=False, allow_blank=True, required=False)
    url = StrictCharField(max_length=500, trim_whitespace=False, allow_blank=True, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError({"non_field_errors": [NO_CHANGES]})
        return attrs
