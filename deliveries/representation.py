"""The ``Delivery`` object of the API (SPEC 5.1 ``DeliveryRead``), built from a job row."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from rest_framework import serializers

from deliveries.events import result_images
from deliveries.models import DeliveryJob, DeliveryJobAdapter
from loraforge.progress import iso_timestamp


def with_links(queryset: QuerySet[DeliveryJob]) -> QuerySet[DeliveryJob]:
    """Prefetch the adapter links (one query for a whole page)."""
    return queryset.prefetch_related(
        Prefetch("adapter_links", queryset=DeliveryJobAdapter.objects.order_by("position"))
    )


def _iso(value: Any) -> str | None:
    return None if value is None else iso_timestamp(value)


def link_representation(link: DeliveryJobAdapter) -> dict[str, Any]:
    return {
        "id": str(link.adapter_id) if link.adapter_id else None,
        "name": link.adapter_name,
        "sdnext_name": link.sdnext_name,
        "weight": link.weight,
    }


def delivery_representation(job: DeliveryJob, *, normalised: bool = False) -> dict[str, Any]:
    """``status`` is raw unless ``normalised`` (``/generation/jobs/{id}``)."""
    return {
        "id": str(job.pk),
        "kind": job.kind,
        "prompt": job.prompt,
        "mode": job.mode,
        "params": job.params,
        "status": job.normalised_status if normalised else job.status,
        "progress": job.progress,
        "progress_percent": job.progress_percent,
        "current_step": job.current_step,
        "total_steps": job.total_steps,
        "eta_seconds": job.eta_seconds,
        "message": job.message,
        "result": job.result,
        "error": job.error,
        "error_code": job.error_code,
        "backend": job.backend_name,
        "adapters": [link_representation(link) for link in job.adapter_links.all()],
        "images": result_images(job),
        "attempts": job.attempts,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "updated_at": _iso(job.updated_at),
    }


# --- schema (drf-spectacular) ---------------------------------------------------------------------


class DeliveryAdapterSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(allow_null=True)
    name = serializers.CharField()
    sdnext_name = serializers.CharField()
    weight = serializers.FloatField()


class DeliverySerializer(serializers.Serializer[Any]):
    """Documentation of ``delivery_representation`` (responses are built by that function)."""

    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=["generation", "delivery"])
    prompt = serializers.CharField()
    mode = serializers.CharField()
    params = serializers.DictField()
    status = serializers.CharField()
    progress = serializers.FloatField()
    progress_percent = serializers.IntegerField()
    current_step = serializers.IntegerField(allow_null=True)
    total_steps = serializers.IntegerField(allow_null=True)
    eta_seconds = serializers.FloatField(allow_null=True)
    message = serializers.CharField()
    result = serializers.DictField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    error_code = serializers.CharField(allow_null=True)
    backend = serializers.CharField(allow_null=True)
    adapters = DeliveryAdapterSerializer(many=True)
    images = serializers.ListField(child=serializers.CharField())
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField()
