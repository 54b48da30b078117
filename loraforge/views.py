"""Shared view pieces: the UUID lookup, open endpoints, health."""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from loraforge.errors import NotFound, problem_response

UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
UUID_RE = re.compile(UUID_PATTERN)
HEALTH_METHODS = ("GET", "HEAD")


class UUIDLookupMixin:
    """The one detail lookup of every viewset. Any path segment routes to the detail views, so an id that is
    not a UUID gets the resource's own 404 (SPEC 7), and so does a call without an id (DRF's ``OPTIONS``
    metadata asks every action for its object)."""

    lookup_value_regex = "[^/]+"
    not_found_detail = "Not found"
    kwargs: dict[str, Any]
    get_queryset: Any  # GenericAPIView's, later in the MRO

    def lookup_id(self) -> str:
        pk = self.kwargs.get("pk")
        if not isinstance(pk, str) or not UUID_RE.fullmatch(pk):
            raise NotFound(self.not_found_detail)
        return pk

    def fetch_object(self, pk: str) -> Any:
        """The row with this id, or ``None``; viewsets whose rows come from a selector override it. Unordered: one
        row cannot need an order, and ``first()`` would compile the model's ordering on every lookup (for adapters
        half of an uncached read by id)."""
        return next(iter(self.get_queryset().filter(pk=pk).order_by()[:1]), None)

    def get_object(self) -> Any:
        found = self.fetch_object(self.lookup_id())
        if found is None:
            raise NotFound(self.not_found_detail)
        return found


@csrf_exempt  # open and read-only: other methods get a 405 problem, not a CSRF page
def health(request: HttpRequest) -> HttpResponse:
    """Liveness without touching the database."""
    if request.method not in HEALTH_METHODS:
        response = problem_response(request, 405, f"Method {request.method} not allowed")
        response["Allow"] = ", ".join(HEALTH_METHODS)
        return response
    return JsonResponse({"status": "ok"})
