"""Shared view pieces: the UUID lookup, open endpoints, health."""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from loraforge.errors import problem_response

UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
UUID_RE = re.compile(UUID_PATTERN)
HEALTH_METHODS = ("GET", "HEAD")


def health(request: HttpRequest) -> HttpResponse:
    """Liveness without touching the database."""
    if request.method not in HEALTH_METHODS:
        response = problem_response(request, 405, f"Method {request.method} not allowed")
        response["Allow"] = ", ".join(HEALTH_METHODS)
        return response
    return JsonResponse({"status": "ok"})


def envelope(key: str, value: Any) -> dict[str, Any]:
    return {key: value}
