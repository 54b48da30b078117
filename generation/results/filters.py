"""``GenerationResultFilterSet`` and the pagination of ``GET /generation/results`` (SPEC 5.5.4, 4.3, 4.5)."""

from __future__ import annotations

import uuid
from typing import Any

import django_filters
from django.db.models import Exists, F, OuterRef, QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from deliveries.models import DeliveryJobAdapter
from generation.models import GenerationResult
from loraforge.filters import BoolFilter, DateTimeBoundFilter, FilterSet, IntegerFilter, choice_error
from loraforge.pagination import MAX_PER_PAGE, EnvelopePagination, page_rows
from loraforge.query import query_int

SORTS: dict[str, tuple[Any, ...]] = {
    "created_at": (F("created_at").desc(), F("id").desc()),
    "created_at_asc": (F("created_at").asc(), F("id").asc()),
    "rating": (F("rating").desc(nulls_last=True), F("created_at").desc(), F("id").desc()),
    "rating_asc": (F("rating").asc(nulls_last=True), F("created_at").desc(), F("id").desc()),
}
SORT_NAMES = tuple(SORTS)
LIMIT_ERROR = f"limit must be between 1 and {MAX_PER_PAGE}"
OFFSET_ERROR = "offset must be at least 0"


class GenerationResultFilterSet(FilterSet):
    search = django_filters.CharFilter(field_name="job__prompt", lookup_expr="icontains", max_length=1000)
    sort = django_filters.ChoiceFilter(
        choices=[(name, name) for name in SORT_NAMES],
        method="filter_noop",
        error_messages=choice_error("sort", SORT_NAMES),
    )
    min_rating = IntegerFilter(field_name="rating", lookup_expr="gte", min_value=0, max_value=5)
    is_favorite = BoolFilter(field_name="is_favorite")
    width = IntegerFilter(field_name="width")
    height = IntegerFilter(field_name="height")
    start_date = DateTimeBoundFilter(field_name="created_at", lookup_expr="gte")
    end_date = DateTimeBoundFilter(field_name="created_at", lookup_expr="lte", end_of_day=True)
    job_id = django_filters.UUIDFilter(field_name="job_id")
    adapter_id = django_filters.UUIDFilter(method="filter_adapter")
    backend = django_filters.CharFilter(field_name="job__backend_name", max_length=64)

    class Meta:
        model = GenerationResult
        fields = [
            "search", "sort", "min_rating", "is_favorite", "width", "height", "start_date", "end_date", "job_id",
            "adapter_id", "backend",
        ]  # fmt: skip

    @property
    def qs(self) -> QuerySet[GenerationResult]:
        queryset = super().qs
        sort = self.form.cleaned_data.get("sort") or "created_at"
        return queryset.order_by(*SORTS[sort])

    def filter_noop(self, queryset: QuerySet[GenerationResult], name: str, value: Any) -> QuerySet[GenerationResult]:
        return queryset

    def filter_adapter(
        self, queryset: QuerySet[GenerationResult], name: str, value: uuid.UUID
    ) -> QuerySet[GenerationResult]:
        """Images of jobs linked to the adapter (an ``EXISTS``: a job linking it twice lists each image once)."""
        links = DeliveryJobAdapter.objects.filter(job_id=OuterRef("job_id"), adapter_id=value)
        return queryset.filter(Exists(links))


class ResultPagination(EnvelopePagination):
    """The envelope (24 per page) plus ``stats`` of the filtered set, which the view's ``list_stats`` computes
    (its ``total_results`` is the filtered count, so no second count runs). ``limit``/``offset``
    compatibility: ``limit`` (1..200) replaces ``per_page``; ``offset`` replaces ``page`` and items start
    exactly there."""

    default_per_page = 24

    def __init__(self) -> None:
        super().__init__()
        self.offset: int | None = None
        self.stats: dict[str, Any] = {}

    def parse(self, request: Request) -> None:
        super().parse(request)
        limit = query_int(request, "limit")
        offset = query_int(request, "offset")
        if limit is not None:
            if not 1 <= limit <= MAX_PER_PAGE:
                raise ValidationError({"limit": [LIMIT_ERROR]})
            self.per_page = limit
        if offset is not None:
            if offset < 0:
                raise ValidationError({"offset": [OFFSET_ERROR]})
            self.offset = offset
            self.page = offset // self.per_page + 1

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        self.parse(request)
        self.stats = view.list_stats(queryset)
        self.total = self.count_total(queryset, view)
        self.filtered = self.stats["total_results"]
        start = self.offset if self.offset is not None else (self.page - 1) * self.per_page
        if start >= self.filtered:
            return []
        return page_rows(queryset, start, self.per_page)

    def envelope(self, items: Any) -> dict[str, Any]:
        return {**super().envelope(items), "stats": self.stats}

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        envelope = super().get_paginated_response_schema(schema)
        stats = {
            "type": "object",
            "required": ["total_results", "favorites", "rated", "average_rating"],
            "properties": {
                "total_results": {"type": "integer"},
                "favorites": {"type": "integer"},
                "rated": {"type": "integer"},
                "average_rating": {"type": "number", "format": "double", "nullable": True},
            },
        }
        return {
            **envelope,
            "required": [*envelope["required"], "stats"],
            "properties": {**envelope["properties"], "stats": stats},
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            *super().get_schema_operation_parameters(view),
            {
                "name": "limit",
                "required": False,
                "in": "query",
                "description": "Compatibility: replaces per_page",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
            },
            {
                "name": "offset",
                "required": False,
                "in": "query",
                "description": "Compatibility: items start exactly at this offset",
                "schema": {"type": "integer", "minimum": 0},
            },
        ]
