"""Request middleware of the project."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from loraforge.errors import problem_response, request_too_large_detail, wants_problem

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodySizeLimitMiddleware:
    """Refuse oversized API bodies: from the declared ``Content-Length`` before reading, and while
    reading a body sent without one (chunked), which is then buffered so the API sees it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if wants_problem(request.path):
            content_type = request.META.get("CONTENT_TYPE", "")
            is_upload = content_type.startswith("multipart/form-data")
            limit_mb = settings.LORAFORGE_MAX_UPLOAD_MB if is_upload else settings.LORAFORGE_MAX_BODY_MB
            length = _declared_length(request)
            if length is None and not is_upload and request.method in BODY_METHODS:
                length = _buffer_undeclared_body(request, limit_mb * 1024 * 1024)
            if length is not None and length > limit_mb * 1024 * 1024:
                detail = f"Upload too large (limit {limit_mb} MB)" if is_upload else request_too_large_detail()
                return problem_response(request, 413, detail)
        return self.get_response(request)


def _declared_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def _buffer_undeclared_body(request: HttpRequest, limit: int) -> int:
    """Read at most ``limit + 1`` bytes of a body without ``Content-Length``; return how many came."""
    body = request.read(limit + 1)
    if len(body) <= limit:
        # Django (request.body) and DRF (which skips bodies without a length) read it from here.
        request._body = body
        request.META["CONTENT_LENGTH"] = str(len(body))
    return len(body)
