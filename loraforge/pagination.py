"""The pagination envelope of every list endpoint (SPEC 4.5)."""

from __future__ import annotations

import math
from typing import Any

from django.db.models import QuerySet
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

from loraforge.query import query_int

MAX_PER_PAGE = 200
PER_PAGE_DESCRIPTION = (
    f"Rows per page; below 1 counts as 1, above {MAX_PER_PAGE} is clamped to {MAX_PER_PAGE} (not an error)."
)
DEFERRED_JOIN_OFFSET = 500  # below it one query is cheaper than two


class EnvelopePagination(BasePagination):
    """``{"items", "total", "filtered", "page", "pages", "per_page"}`` with clamped page sizes."""

    default_per_page = 24

    def __init__(self, default_per_page: int | None = None) -> None:
        if default_per_page is not None:
            self.default_per_page = default_per_page
        self.page = 1
        self.per_page = self.default_per_page
        self.filtered = 0
        self.total = 0

    def parse(self, request: Request) -> None:
        # Clamped, never out of range (SPEC 4.5): a page past the last is an empty page.
        page = query_int(request, "page", 1, bounded=False)
        alias = query_int(request, "page_size", bounded=False)  # validated even when per_page wins
        per_page = query_int(request, "per_page", bounded=False)
        if per_page is None:
            per_page = self.default_per_page if alias is None else alias
        self.page = max(page, 1)
        self.per_page = min(max(per_page, 1), MAX_PER_PAGE)

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        self.parse(request)
        if not isinstance(queryset, QuerySet):
            self.filtered = self.total = len(queryset)
            return list(queryset[(self.page - 1) * self.per_page :][: self.per_page])
        self.total = self.count_total(queryset, view)
        self.filtered = queryset.count() if queryset.query.has_filters() else self.total
        offset = (self.page - 1) * self.per_page
        if offset >= self.filtered:
            return []
        return page_rows(queryset, offset, self.per_page)

    def count_total(self, queryset: QuerySet[Any], view: Any) -> int:
        """Rows of the whole resource: the view's ``count_all()`` when it keeps a count, else ``COUNT(*)``."""
        count_all = getattr(view, "count_all", None)
        known = count_all() if callable(count_all) else None
        return known if known is not None else queryset.model._default_manager.count()

    def get_paginated_response(self, data: Any) -> Response:
        return Response(self.envelope(data))

    def envelope(self, items: Any) -> dict[str, Any]:
        return {
            "items": items,
            "total": self.total,
            "filtered": self.filtered,
            "page": self.page,
            "pages": math.ceil(self.filtered / self.per_page) if self.filtered else 0,
            "per_page": self.per_page,
        }

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["items", "total", "filtered", "page", "pages", "per_page"],
            "properties": {
                "items": schema,
                "total": {"type": "integer"},
                "filtered": {"type": "integer"},
                "page": {"type": "integer"},
                "pages": {"type": "integer"},
                "per_page": {"type": "integer"},
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": "page",
                "required": False,
                "in": "query",
                "schema": {"type": "integer"},
                "description": "Page number; below 1 counts as 1.",
            },
            {
                "name": "per_page",
                "required": False,
                "in": "query",
                "schema": {"type": "integer"},
                "description": PER_PAGE_DESCRIPTION,
            },
            {
                "name": "page_size",
                "required": False,
                "in": "query",
                "schema": {"type": "integer"},
                "description": "Alias of `per_page`.",
            },
        ]


def page_rows(queryset: QuerySet[Any], offset: int, limit: int) -> list[Any]:
    """One page; past ``DEFERRED_JOIN_OFFSET`` by "deferred join": the ids of the page first (an index walk that
    skips rows without reading them, so a deep ``OFFSET`` stays cheap), then the full rows of those ids only."""
    if offset < DEFERRED_JOIN_OFFSET:
        return list(queryset[offset : offset + limit])
    ids = list(queryset.values_list("pk", flat=True)[offset : offset + limit])
    rows = {row.pk: row for row in queryset.filter(pk__in=ids).order_by()}  # instances or named rows with ``pk``
    return [rows[pk] for pk in ids if pk in rows]


class JobPagination(EnvelopePagination):
    default_per_page = 50
