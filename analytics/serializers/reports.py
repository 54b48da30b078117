"""Query and response shapes of the analytics report endpoints (SPEC 5.7)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from analytics.windows import TIME_RANGE_INVALID, TIME_RANGES
from loraforge.fields import CopiedFieldsSerializer

LORA_USAGE_LIMIT_MAX = 100


class ReportQuerySerializer(CopiedFieldsSerializer):
    """``time_range`` (default ``24h``); an empty value is the same as leaving it out (SPEC 4.3)."""

    time_range = serializers.ChoiceField(
        choices=TIME_RANGES, default="24h", error_messages={"invalid_choice": TIME_RANGE_INVALID},
        help_text="Window: 24 hourly buckets, or 7 / 30 daily buckets (UTC)",
    )  # fmt: skip

    def to_internal_value(self, data: Any) -> Any:
        return super().to_internal_value({name: data[name] for name in self.fields if data.get(name) not in (None, "")})


class LoraUsageQuerySerializer(ReportQuerySerializer):
    limit = serializers.IntegerField(
        min_value=1, max_value=LORA_USAGE_LIMIT_MAX, default=20, help_text="How many adapters (1..100)"
    )


def _percent(help_text: str) -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, help_text=help_text)


class AnalyticsStatsSerializer(serializers.Serializer[Any]):
    time_range = serializers.ChoiceField(choices=TIME_RANGES)
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    total_generations = serializers.IntegerField()
    generation_growth = _percent("Change of total_generations vs the previous window (%); null when it had none")
    avg_generation_time = serializers.FloatField(allow_null=True, help_text="Mean duration of succeeded jobs (s)")
    time_improvement = _percent("Positive = faster than the previous window (%)")
    success_rate = _percent("succeeded / (succeeded + failed) (%)")
    total_succeeded = serializers.IntegerField()
    total_failed = serializers.IntegerField()
    total_cancelled = serializers.IntegerField()
    active_loras = serializers.IntegerField()
    total_loras = serializers.IntegerField()


class AnalyticsErrorSerializer(serializers.Serializer[Any]):
    type = serializers.CharField(help_text="error_code (null → unknown)")
    count = serializers.IntegerField()
    percentage = serializers.FloatField()
    description = serializers.CharField(allow_null=True, help_text="The most frequent error text (ties: most recent)")


class VolumePointSerializer(serializers.Serializer[Any]):
    timestamp = serializers.DateTimeField()
    count = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()


class PerformancePointSerializer(serializers.Serializer[Any]):
    timestamp = serializers.DateTimeField()
    avg_time = serializers.FloatField(allow_null=True)
    success_rate = serializers.FloatField(allow_null=True)


class AdapterCountSerializer(serializers.Serializer[Any]):
    adapter_id = serializers.UUIDField()
    name = serializers.CharField()
    count = serializers.IntegerField(help_text="Generation jobs of the window linked to the adapter")


class LoraUsagePointSerializer(AdapterCountSerializer):
    success_rate = serializers.FloatField(allow_null=True)


class ResourcePointSerializer(serializers.Serializer[Any]):
    timestamp = serializers.DateTimeField()
    cpu_percent = serializers.FloatField(allow_null=True)
    memory_percent = serializers.FloatField(allow_null=True)
    gpu_percent = serializers.FloatField(allow_null=True)


class AnalyticsTimeseriesSerializer(serializers.Serializer[Any]):
    generation_volume = VolumePointSerializer(many=True)
    performance = PerformancePointSerializer(many=True)
    lora_usage = LoraUsagePointSerializer(many=True)
    resource_usage = ResourcePointSerializer(many=True)


class AnalyticsInsightSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    severity = serializers.ChoiceField(choices=["low", "medium", "high"])
    recommendation = serializers.CharField(allow_null=True)


class AnalyticsSummarySerializer(serializers.Serializer[Any]):
    time_range = serializers.ChoiceField(choices=TIME_RANGES)
    generated_at = serializers.DateTimeField()
    kpis = AnalyticsStatsSerializer()
    chart_data = AnalyticsTimeseriesSerializer()
    error_breakdown = AnalyticsErrorSerializer(many=True)
    performance_insights = AnalyticsInsightSerializer(many=True)


class LoraUsageSerializer(AdapterCountSerializer):
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    last_used_at = serializers.DateTimeField(allow_null=True, help_text="The adapter's last successful generation")
