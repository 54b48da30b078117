"""Input and output shapes of the scan endpoints (SPEC 5.2): scan, rescan."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from adapters.scan_service import ScanRequest, scan_paths_errors
from adapters.serializers import AdapterSerializer
from loraforge.fields import StrictBooleanField, StrictCharField, StrictSerializer

MAX_SCAN_PATHS = 100


class ScanRequestSerializer(StrictSerializer):
    paths = serializers.ListField(
        child=StrictCharField(max_length=4096, trim_whitespace=False),
        max_length=MAX_SCAN_PATHS,
        required=False,
        allow_null=True,
        help_text="Files or folders inside the LoRA folders; omitted, null or empty: every LoRA folder.",
    )
    dry_run = StrictBooleanField(required=False, default=False)
    force_rehash = StrictBooleanField(required=False, default=False)
    include_excluded = StrictBooleanField(required=False, default=False)

    def validate_paths(self, value: list[str] | None) -> list[str] | None:
        if not value:
            return None
        resolved, errors = scan_paths_errors(value)
        if errors:
            raise serializers.ValidationError(errors)
        return resolved

    def scan_request(self) -> ScanRequest:
        data = self.validated_data
        paths = data.get("paths")
        return ScanRequest(
            paths=tuple(paths) if paths else None,
            dry_run=data["dry_run"],
            force_rehash=data["force_rehash"],
            include_excluded=data["include_excluded"],
        )


class ScanAcceptedSerializer(serializers.Serializer[Any]):
    job_id = serializers.UUIDField()
    kind = serializers.CharField()
    status = serializers.CharField()


class ScanItemReportSerializer(serializers.Serializer[Any]):
    path = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["created", "updated", "changed", "unchanged", "moved", "duplicate", "missing", "excluded", "error"]
    )
    detail = serializers.CharField(allow_null=True)


class RescanResultSerializer(serializers.Serializer[Any]):
    adapter = AdapterSerializer()
    report = ScanItemReportSerializer()
