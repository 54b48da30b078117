"""List filters of the adapter changelist."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from adapters.models import file_missing_filter
from adapters.selectors import tag_counts
from adapters.tags import tag_token

TAG_FILTER_SIZE = 50


class FileMissingFilter(admin.SimpleListFilter):
    title = "file missing"
    parameter_name = "missing"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(file_missing_filter(value == "yes")) if value in ("yes", "no") else queryset


class TagFilter(admin.SimpleListFilter):
    title = "tag"
    parameter_name = "tag"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        most_used = Counter(tag_counts()).most_common(TAG_FILTER_SIZE)
        return [(tag, f"{tag} ({count})") for tag, count in most_used]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        tag = self.value()
        return queryset.filter(tag_index__contains=tag_token(tag)) if tag else queryset
