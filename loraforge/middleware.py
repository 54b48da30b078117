"""Request middleware of the project."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from loraforge.errors import problem_response, request_too_large_detail, wants_problem


class BodySizeLimitMiddleware:
    """Refuse API bodies whose declared ``Content-Length`` exceeds the limit before reading them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if wants_problem(request.path):
            declared = request.META.get("CONTENT_LENGTH") or "0"
            content_type = request.META.get("CONTENT_TYPE", "")
            is_upload = content_type.startswith("multipart/form-data")
            limit_mb = settings.LORAFORGE_MAX_UPLOAD_MB if is_upload else settings.LORAFORGE_MAX_BODY_MB
            try:
                length = int(declared)
            except ValueError:
                length = 0
            if length > limit_mb * 1024 * 1024:
                detail = f"Upload too large (limit {limit_mb} MB)" if is_upload else request_too_large_detail()
                return problem_response(request, 413, detail)
        return self.get_response(request)
