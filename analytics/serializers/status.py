"""Shape of ``GET /system/status`` (SPEC 5.10): the view renders the assembled dict through it, so the schema and
the answer cannot drift apart."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

S = serializers


# ``status`` and ``mode`` are documented in words: an enum of that field name collides with the jobs' and the
# deliveries' enums in the schema's components.
STATUS_HELP = "`healthy`, `warning` (see `warnings`) or `error` (the database is unavailable)"


def enum_field(values: list[str], **kwargs: Any) -> serializers.CharField:
    """A string documented with its values; they are produced by the selectors, never parsed."""
    field_class = extend_schema_field({"type": "string", "enum": values})(type("EnumField", (S.CharField,), {}))
    return field_class(**kwargs)


class DatabaseStatusSerializer(S.Serializer[Any]):
    engine = S.CharField()
    ok = S.BooleanField()
    latency_ms = S.FloatField(allow_null=True)
    error = S.CharField(allow_null=True)


class RedisStatusSerializer(S.Serializer[Any]):
    configured = S.BooleanField()
    ok = S.BooleanField(allow_null=True)
    latency_ms = S.FloatField(allow_null=True)
    error = S.CharField(allow_null=True)


class CeleryWorkerSerializer(S.Serializer[Any]):
    name = S.CharField()
    ok = S.BooleanField()


class CeleryStatusSerializer(S.Serializer[Any]):
    mode = S.CharField(help_text="`embedded` or `distributed`")
    ok = S.BooleanField()
    workers = CeleryWorkerSerializer(many=True)
    error = S.CharField(allow_null=True)
    queue_depth = S.DictField(
        child=S.IntegerField(), allow_null=True, help_text="Broker list lengths of `generation` and `default`."
    )


class QueueStatusSerializer(S.Serializer[Any]):
    total = S.IntegerField()
    active = S.IntegerField()
    pending = S.IntegerField()
    running = S.IntegerField()
    failed = S.IntegerField()
    failed_last_hour = S.IntegerField()


class BackendStatusSerializer(S.Serializer[Any]):
    id = S.UUIDField()
    name = S.CharField()
    url = S.CharField()
    enabled = S.BooleanField()
    healthy = S.BooleanField(allow_null=True)
    busy = S.BooleanField()
    last_checked_at = S.DateTimeField(allow_null=True)
    last_error = S.CharField(allow_null=True)
    version = S.DictField(allow_null=True, help_text="The server's version object (`app`, `commit`, ...).")


class SdnextStatusSerializer(S.Serializer[Any]):
    configured = S.BooleanField()
    base_url = S.CharField(allow_null=True)
    available = S.BooleanField()
    error = S.CharField(allow_null=True)
    checked_at = S.DateTimeField(allow_null=True)


class GpuDeviceSerializer(S.Serializer[Any]):
    index = S.IntegerField()
    name = S.CharField()
    memory_used = S.IntegerField(allow_null=True, help_text="MiB")
    memory_total = S.IntegerField(allow_null=True, help_text="MiB")
    memory_percent = S.FloatField(allow_null=True)
    utilization_percent = S.FloatField(allow_null=True)
    temperature_c = S.FloatField(allow_null=True)
    fan_percent = S.FloatField(allow_null=True)
    power_watts = S.FloatField(allow_null=True)


class GpuStatusSerializer(S.Serializer[Any]):
    available = S.BooleanField()
    # Declared fields are popped off the class by DRF's metaclass: ``source``/``data`` do not shadow Field/Serializer.
    source = enum_field(["nvml", "torch"], allow_null=True)  # type: ignore[assignment]
    devices = GpuDeviceSerializer(many=True)


class MetricsSerializer(S.Serializer[Any]):
    cpu_percent = S.FloatField(allow_null=True)
    memory_percent = S.FloatField(allow_null=True)
    memory_used = S.IntegerField(allow_null=True, help_text="MiB")
    memory_total = S.IntegerField(allow_null=True, help_text="MiB")
    disk_percent = S.FloatField(allow_null=True)
    disk_used = S.IntegerField(allow_null=True, help_text="MiB of the data folder's filesystem")
    disk_total = S.IntegerField(allow_null=True, help_text="MiB of the data folder's filesystem")
    gpus = GpuDeviceSerializer(many=True)
    uptime_seconds = S.IntegerField(allow_null=True, help_text="Seconds since the host booted")
    timestamp = S.DateTimeField()


class DiskBlockSerializer(S.Serializer[Any]):
    path = S.CharField()
    total_bytes = S.IntegerField(allow_null=True)
    used_bytes = S.IntegerField(allow_null=True)
    free_bytes = S.IntegerField(allow_null=True)
    percent = S.FloatField(allow_null=True)
    content_bytes = S.IntegerField(help_text="From database sums (no folder walk)")


class LoraFolderDiskSerializer(DiskBlockSerializer):
    exists = S.BooleanField()


class DiskStatusSerializer(S.Serializer[Any]):
    data = DiskBlockSerializer()  # type: ignore[assignment]
    media = DiskBlockSerializer()
    loras = LoraFolderDiskSerializer(many=True)


class ImporterStatusSerializer(S.Serializer[Any]):
    lora_dirs = S.ListField(child=S.CharField())
    last_scan_at = S.DateTimeField(allow_null=True)
    last_scan_status = S.CharField(allow_null=True)
    total_adapters = S.IntegerField()
    missing_files = S.IntegerField()
    duplicates = S.IntegerField()


class RecommendationsStatusSerializer(S.Serializer[Any]):
    tfidf_ready = S.BooleanField()
    semantic_available = S.BooleanField()
    models_loaded = S.BooleanField()
    embedding_model = S.CharField(allow_null=True)
    gpu_available = S.BooleanField()


class QueueThresholdsSerializer(S.Serializer[Any]):
    active_warning = S.IntegerField()
    failed_warning = S.IntegerField()


class DiskThresholdsSerializer(S.Serializer[Any]):
    percent_warning = S.IntegerField()


class ThresholdsSerializer(S.Serializer[Any]):
    queue = QueueThresholdsSerializer()
    disk = DiskThresholdsSerializer()


class SystemStatusSerializer(S.Serializer[Any]):
    status = S.CharField(help_text=STATUS_HELP)
    message = S.CharField()
    version = S.CharField()
    mode = S.CharField(help_text="`embedded` or `distributed` (SPEC 1.4)")
    auth = enum_field(["on", "off"])
    warnings = S.ListField(child=S.CharField())
    last_updated = S.DateTimeField()
    updated_at = S.DateTimeField()
    gpu_available = S.BooleanField()
    gpu_status = S.CharField(help_text='The first GPU\'s name, or "unavailable"')
    memory_used = S.IntegerField(allow_null=True, help_text="MiB: the first GPU's, else the host's")
    memory_total = S.IntegerField(allow_null=True, help_text="MiB: the first GPU's, else the host's")
    queue_length = S.IntegerField()
    active_workers = S.IntegerField()
    backend = enum_field(["redis", "in-memory"])
    queue_eta_seconds = S.FloatField(allow_null=True)
    database = DatabaseStatusSerializer()
    redis = RedisStatusSerializer()
    celery = CeleryStatusSerializer()
    queue = QueueStatusSerializer()
    backends = BackendStatusSerializer(many=True)
    sdnext = SdnextStatusSerializer()
    gpu = GpuStatusSerializer()
    metrics = MetricsSerializer()
    disk = DiskStatusSerializer()
    importer = ImporterStatusSerializer()
    recommendations = RecommendationsStatusSerializer()
    thresholds = ThresholdsSerializer()
