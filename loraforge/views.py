"""Shared view pieces: the UUID lookup, open endpoints, health."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness without touching the database."""
    return JsonResponse({"status": "ok"})


def envelope(key: str, value: Any) -> dict[str, Any]:
    return {key: value}
