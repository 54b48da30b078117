"""Reads of generation backends."""

from __future__ import annotations

from django.db.models import QuerySet

from generation.models import GenerationBackend


def backends_for_list() -> QuerySet[GenerationBackend]:
    """Every backend in name order, one query (SPEC 5.5.1 lists them unpaginated)."""
    return GenerationBackend.objects.order_by("name", "id")


def any_backend_enabled(backends: list[GenerationBackend]) -> bool:
    """The compatibility key ``sdnext`` of the list: at least one enabled backend exists."""
    return any(backend.enabled for backend in backends)
