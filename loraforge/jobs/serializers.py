"""Representations of BackgroundJobs (SPEC 5.11)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from loraforge.models import BackgroundJob


class BackgroundJobSerializer(serializers.ModelSerializer[BackgroundJob]):
    progress_percent = serializers.SerializerMethodField()
    params = serializers.DictField()
    result = serializers.DictField(allow_null=True)

    class Meta:
        model = BackgroundJob
        fields = [
            "id", "kind", "status", "progress", "progress_percent", "message", "params", "result", "error",
            "created_via", "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_progress_percent(self, job: BackgroundJob) -> int:
        return round(100 * job.progress)


class BackgroundJobEnvelopeSerializer(serializers.Serializer[Any]):
    job = BackgroundJobSerializer()


class JobCancelResultSerializer(serializers.Serializer[Any]):
    success = serializers.BooleanField()
    status = serializers.CharField()
    message = serializers.CharField()
