"""Shapes of the dashboard data endpoints (SPEC 5.8)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from analytics.serializers.status import STATUS_HELP, enum_field

S = serializers


class DashboardCountsSerializer(S.Serializer[Any]):
    total_loras = S.IntegerField()
    active_loras = S.IntegerField()
    embeddings_coverage = S.IntegerField(help_text="Percent (rounded down) of adapters with a current embedding")
    active_share = S.IntegerField(help_text="Percent (rounded down) of adapters that are active")
    recent_imports = S.IntegerField(help_text="Adapters created or re-ingested in the last 24 h")
    active_jobs = S.IntegerField(help_text="Pending and running deliveries")
    missing_files = S.IntegerField()
    duplicates = S.IntegerField()


class DashboardHealthSerializer(S.Serializer[Any]):
    status = S.CharField(help_text=STATUS_HELP)
    gpu_status = S.CharField()
    gpu_memory = S.CharField(help_text='"U.U GB / T.T GB", or "n/a"')
    queue_status = enum_field(["active", "idle"])
    storage_usage = S.CharField(help_text='"U.U GB / T.T GB" of the data folder\'s filesystem')
    backends_healthy = S.IntegerField()
    backends_total = S.IntegerField()


class DashboardStatsSerializer(S.Serializer[Any]):
    stats = DashboardCountsSerializer()
    system_health = DashboardHealthSerializer()


class FeaturedLoraSerializer(S.Serializer[Any]):
    id = S.UUIDField()
    name = S.CharField()
    version = S.CharField(allow_null=True)
    tags = S.ListField(child=S.CharField())
    active = S.BooleanField()
    civitai_url = S.CharField(allow_null=True)
    description = S.CharField(allow_null=True)
    preview_url = S.CharField(allow_null=True)
    base_model = S.CharField(allow_null=True)


class ActivityItemSerializer(S.Serializer[Any]):
    id = S.UUIDField()
    type = S.CharField(help_text="The raw status (as `status`)")
    status = S.CharField(help_text="`pending`, `running`, `succeeded`, `failed` or `cancelled`")
    message = S.CharField()
    mode = S.CharField()
    prompt = S.CharField(allow_blank=True)
    timestamp = S.DateTimeField()
    icon = S.CharField()
