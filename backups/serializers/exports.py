"""ExportConfig (SPEC 5.9): the body of ``POST /export`` and ``POST /export/estimate``, validated into
``ArchiveOptions``; and the estimate's answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import forms
from rest_framework import serializers

from backups.archive import format as fmt
from backups.archive.format import COMPRESSION_LEVELS, ArchiveOptions
from loraforge.fields import StrictBooleanField, StrictCharField, StrictIntegerField, StrictSerializer, StrictUUIDField
from loraforge.filters import DateTimeBoundFormField

MAX_SIZE_MB_MAX = 1_048_576
ADAPTER_IDS_MAX = 200  # SPEC 4.6
GENERATION_RANGES = ("all", "date_range")
REQUIRED = "This field is required."


def choice_error(name: str, choices: tuple[str, ...]) -> dict[str, Any]:
    return {"invalid_choice": f"{name} must be one of: {', '.join(choices)}"}


class DateBoundField(StrictCharField):
    """An ISO 8601 datetime, or a ``YYYY-MM-DD`` date meaning the start (``date_from``) or the end (``date_to``)
    of that day in UTC (SPEC 4.3)."""

    def __init__(self, *, end_of_day: bool = False, **kwargs: Any) -> None:
        self.end_of_day = end_of_day
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> datetime | None:  # type: ignore[override]
        text = super().to_internal_value(data)
        try:
            moment = DateTimeBoundFormField(end_of_day=self.end_of_day).to_python(text)
        except forms.ValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from None
        return None if moment is None else moment.astimezone(UTC)


class ExportConfigSerializer(StrictSerializer):
    loras = StrictBooleanField(default=True)
    lora_files = StrictBooleanField(default=False)
    lora_metadata = StrictBooleanField(default=True)
    lora_embeddings = StrictBooleanField(default=False)
    generations = StrictBooleanField(default=False)
    generation_range = serializers.ChoiceField(
        choices=GENERATION_RANGES, default="all", error_messages=choice_error("generation_range", GENERATION_RANGES)
    )
    date_from = DateBoundField(allow_null=True, default=None)
    date_to = DateBoundField(end_of_day=True, allow_null=True, default=None)
    user_data = StrictBooleanField(default=False)
    system_config = StrictBooleanField(default=False)
    analytics = StrictBooleanField(default=False)
    adapter_ids = serializers.ListField(
        child=StrictUUIDField(), max_length=ADAPTER_IDS_MAX, allow_null=True, default=None
    )
    format = StrictCharField(default="zip", max_length=32)
    compression = serializers.ChoiceField(
        choices=tuple(COMPRESSION_LEVELS), default="balanced",
        error_messages=choice_error("compression", tuple(COMPRESSION_LEVELS)),
    )  # fmt: skip
    split_archives = StrictBooleanField(default=False)
    encrypt = StrictBooleanField(default=False)
    max_size_mb = StrictIntegerField(min_value=1, max_value=MAX_SIZE_MB_MAX, default=1024)
    password = StrictCharField(allow_null=True, allow_blank=True, trim_whitespace=False, max_length=1024, default=None)

    def validate_format(self, value: str) -> str:
        if value.strip().lower() != "zip":
            raise serializers.ValidationError(fmt.ONLY_ZIP)
        return "zip"

    def validate_split_archives(self, value: bool) -> bool:
        if value:
            raise serializers.ValidationError(fmt.NO_SPLIT)
        return value

    def validate_encrypt(self, value: bool) -> bool:
        if value:
            raise serializers.ValidationError(fmt.NO_ENCRYPTION)
        return value

    def validate_password(self, value: str | None) -> str | None:
        if value:
            raise serializers.ValidationError(fmt.NO_ENCRYPTION)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["generation_range"] == "date_range":
            missing = {key: [REQUIRED] for key in ("date_from", "date_to") if attrs.get(key) is None}
            if missing:
                raise serializers.ValidationError(missing)
        if archive_options(attrs).nothing_selected:
            raise serializers.ValidationError(fmt.NOTHING_TO_EXPORT)
        return attrs


def archive_options(data: dict[str, Any]) -> ArchiveOptions:
    """The validated ExportConfig as the parts the archive holds."""
    date_range = data.get("generation_range") == "date_range"
    adapter_ids = data.get("adapter_ids")
    return ArchiveOptions(
        loras=data["loras"],
        lora_files=data["lora_files"],
        lora_metadata=data["lora_metadata"],
        lora_embeddings=data["lora_embeddings"],
        generations=data["generations"],
        date_from=data.get("date_from") if date_range else None,
        date_to=data.get("date_to") if date_range else None,
        user_data=data["user_data"],
        system_config=data["system_config"],
        analytics=data["analytics"],
        adapter_ids=None if adapter_ids is None else tuple(dict.fromkeys(str(value) for value in adapter_ids)),
        compression=data["compression"],
    )


class ExportCountsSerializer(serializers.Serializer[Any]):
    adapters = serializers.IntegerField()
    lora_files = serializers.IntegerField()
    embeddings = serializers.IntegerField()
    generation_jobs = serializers.IntegerField()
    generation_results = serializers.IntegerField()
    resource_samples = serializers.IntegerField()


class ExportEstimateSerializer(serializers.Serializer[Any]):
    size = serializers.CharField(help_text='Formatted, e.g. "1.50 MB"')
    time = serializers.CharField(help_text='Formatted, e.g. "1 second"')
    size_bytes = serializers.IntegerField()
    time_seconds = serializers.FloatField()
    counts = ExportCountsSerializer()
