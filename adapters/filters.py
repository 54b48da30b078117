"""``AdapterFilterSet``: search, filters and sort of ``GET /adapters`` (SPEC 5.2)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import F, QuerySet
from django.db.models.functions import Lower

from adapters.models import Adapter, AdapterTag, BaseFamily, HashStatus, file_missing_filter, search_index_for
from adapters.tags import normalize_tag
from loraforge.filters import BoolFilter, FilterSet, choice_error

SORTS: dict[str, tuple[Any, ...]] = {
    "name": (Lower("name").asc(), F("id").asc()),
    "name_desc": (Lower("name").desc(), F("id").asc()),
    "created_at": (F("created_at").desc(), Lower("name").asc(), F("id").asc()),
    "created_at_asc": (F("created_at").asc(), Lower("name").asc(), F("id").asc()),
    "updated_at": (F("updated_at").desc(), Lower("name").asc(), F("id").asc()),
    "file_size": (F("file_size").desc(nulls_last=True), Lower("name").asc(), F("id").asc()),
    "ordinal": (F("ordinal").asc(nulls_last=True), Lower("name").asc(), F("id").asc()),
    "usage": (F("usage_count").desc(), Lower("name").asc(), F("id").asc()),
}
SORT_NAMES = tuple(SORTS)


class AdapterFilterSet(FilterSet):
    search = django_filters.CharFilter(method="filter_search", max_length=200)
    active_only = BoolFilter(method="filter_active_only")
    active = BoolFilter(field_name="active")
    tags = django_filters.CharFilter(method="filter_tags", max_length=2000)
    tags_mode = django_filters.ChoiceFilter(
        choices=[("any", "any"), ("all", "all")],
        method="filter_noop",
        error_messages=choice_error("tags_mode", ("any", "all")),
    )
    base_family = django_filters.ChoiceFilter(
        choices=BaseFamily.choices, error_messages=choice_error("base_family", BaseFamily.values)
    )
    base_model = django_filters.CharFilter(field_name="base_model", lookup_expr="iexact", max_length=64)
    missing = BoolFilter(method="filter_missing")
    duplicates = BoolFilter(field_name="has_duplicates")
    hash_status = django_filters.ChoiceFilter(
        choices=HashStatus.choices, error_messages=choice_error("hash_status", HashStatus.values)
    )
    sort = django_filters.ChoiceFilter(
        choices=[(name, name) for name in SORT_NAMES],
        method="filter_noop",
        error_messages=choice_error("sort", SORT_NAMES),
    )

    class Meta:
        model = Adapter
        fields = [
            "search",
            "active_only",
            "active",
            "tags",
            "tags_mode",
            "base_family",
            "base_model",
            "missing",
            "duplicates",
            "hash_status",
            "sort",
        ]

    @property
    def qs(self) -> QuerySet[Adapter]:
        queryset = super().qs
        sort = self.form.cleaned_data.get("sort") or "name"
        return queryset.order_by(*SORTS[sort])

    def filter_noop(self, queryset: QuerySet[Adapter], name: str, value: Any) -> QuerySet[Adapter]:
        return queryset

    def filter_search(self, queryset: QuerySet[Adapter], name: str, value: str) -> QuerySet[Adapter]:
        needle = search_index_for(value.strip())
        return queryset.filter(search_index__contains=needle) if needle else queryset

    def filter_active_only(self, queryset: QuerySet[Adapter], name: str, value: bool | None) -> QuerySet[Adapter]:
        return queryset.filter(active=True) if value else queryset

    def filter_missing(self, queryset: QuerySet[Adapter], name: str, value: bool | None) -> QuerySet[Adapter]:
        if value is None:
            return queryset
        return queryset.filter(file_missing_filter(value))

    def filter_tags(self, queryset: QuerySet[Adapter], name: str, value: str) -> QuerySet[Adapter]:
        """Through the trigger-kept ``AdapterTag`` index: ``any`` is one ``IN``, ``all`` one ``IN`` per tag."""
        tags = list(dict.fromkeys(normalize_tag(tag) for tag in value.split(",") if tag.strip()))
        if not tags:
            return queryset
        if self.form.cleaned_data.get("tags_mode") == "all":
            for tag in tags:
                queryset = queryset.filter(pk__in=AdapterTag.objects.filter(tag=tag).values("adapter_id"))
            return queryset
        return queryset.filter(pk__in=AdapterTag.objects.filter(tag__in=tags).values("adapter_id"))
