"""``POST /import`` (SPEC 5.9): the multipart request, its ``config`` (ImportConfig) and the report."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from backups.archive.format import NO_ENCRYPTION
from backups.services.imports import MODE_ALIASES, ImportConfig
from loraforge.fields import StrictBooleanField, StrictSerializer

CONFIG_NOT_OBJECT = "config must be a JSON object"
FILES_REQUIRED = "At least one file is required"
MODE_INVALID = "mode must be one of: merge, replace, dry-run"
IGNORED_KEYS = ("conflict_resolution", "validate")


class ImportConfigSerializer(StrictSerializer):
    """ImportConfig (``conflict_resolution`` and ``validate`` are dropped before it: see ``import_config``)."""

    mode = serializers.CharField(required=False, default="merge")
    backup_before = StrictBooleanField(required=False, default=False)
    password = serializers.JSONField(required=False, allow_null=True)

    def validate_mode(self, value: Any) -> str:
        if not isinstance(value, str) or value not in MODE_ALIASES:
            raise serializers.ValidationError(MODE_INVALID)
        return MODE_ALIASES[value]

    def validate_password(self, value: Any) -> None:
        if value not in (None, ""):
            raise serializers.ValidationError(NO_ENCRYPTION)

    def config(self) -> ImportConfig:
        data = self.validated_data
        return ImportConfig(mode=data["mode"], backup_before=data["backup_before"])


def import_config(raw: Any) -> ImportConfig:
    """The ``config`` form field (a JSON string, optional) as an ``ImportConfig``; errors keyed ``config.<field>``."""
    if raw in (None, ""):
        return ImportConfig()
    try:
        data = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise serializers.ValidationError({"config": [CONFIG_NOT_OBJECT]})
    for ignored in IGNORED_KEYS:  # accepted for compatibility, no effect: validation always runs
        data.pop(ignored, None)
    serializer = ImportConfigSerializer(data=data)
    if not serializer.is_valid():
        raise serializers.ValidationError({"config": serializer.errors})
    return serializer.config()


class ImportUploadSerializer(serializers.Serializer):
    """The multipart form (documentation; the view reads the parsed form itself)."""

    files = serializers.ListField(child=serializers.FileField(), min_length=1, max_length=10)
    config = serializers.CharField(
        required=False, allow_blank=True, help_text="ImportConfig as a JSON object string (empty: the defaults)"
    )


class ImportAdapterSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()


ImportFileResultSerializer = inline_serializer(
    "ImportFileResult",
    fields={
        "file": serializers.CharField(),
        "status": serializers.ChoiceField(choices=["imported", "validated", "error"]),
        "detail": serializers.CharField(required=False, help_text="the first error (status error)"),
        "created": serializers.IntegerField(required=False),
        "updated": serializers.IntegerField(required=False),
        "skipped": serializers.IntegerField(required=False),
        "adapters": ImportAdapterSerializer(many=True, required=False),
        "parts": serializers.DictField(child=serializers.IntegerField(), required=False),
        "warnings": serializers.ListField(child=serializers.CharField(), required=False),
        "errors": serializers.ListField(child=serializers.CharField()),
    },
)


class ImportResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    processed_files = serializers.IntegerField()
    total_files = serializers.IntegerField()
    mode = serializers.ChoiceField(choices=["merge", "replace", "dry-run"])
    job_id = serializers.UUIDField()
    results = serializers.ListField(child=ImportFileResultSerializer)
