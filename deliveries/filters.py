"""``DeliveryJobFilterSet``: the filters of ``GET /deliveries`` (SPEC 5.4, 4.3)."""

from __future__ import annotations

import uuid

import django_filters
from django.db.models import Exists, OuterRef, QuerySet

from deliveries.models import DeliveryJob, DeliveryJobAdapter, DeliveryKind, DeliveryMode
from loraforge.filters import DateTimeBoundFilter, FilterSet, choice_error
from loraforge.models.jobs import JobStatus


class DeliveryJobFilterSet(FilterSet):
    status = django_filters.ChoiceFilter(
        choices=JobStatus.choices, error_messages=choice_error("status", JobStatus.values)
    )
    kind = django_filters.ChoiceFilter(
        choices=DeliveryKind.choices, error_messages=choice_error("kind", DeliveryKind.values)
    )
    mode = django_filters.ChoiceFilter(
        choices=DeliveryMode.choices, error_messages=choice_error("mode", DeliveryMode.values)
    )
    backend = django_filters.CharFilter(field_name="backend_name", max_length=64)
    adapter_id = django_filters.UUIDFilter(method="filter_adapter")
    search = django_filters.CharFilter(field_name="prompt", lookup_expr="icontains", max_length=1000)
    created_after = DateTimeBoundFilter(field_name="created_at", lookup_expr="gte")
    created_before = DateTimeBoundFilter(field_name="created_at", lookup_expr="lte", end_of_day=True)

    class Meta:
        model = DeliveryJob
        fields = ["status", "kind", "mode", "backend", "adapter_id", "search", "created_after", "created_before"]

    def filter_adapter(self, queryset: QuerySet[DeliveryJob], name: str, value: uuid.UUID) -> QuerySet[DeliveryJob]:
        """Jobs linked to the adapter (an ``EXISTS``, so a job linking it twice is listed once)."""
        links = DeliveryJobAdapter.objects.filter(job=OuterRef("pk"), adapter_id=value)
        return queryset.filter(Exists(links))
