"""Request middleware of the project."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from loraforge.errors import PayloadTooLarge, problem_response, request_too_large_detail, wants_problem

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodySizeLimitMiddleware:
    """Refuse oversized API bodies: from the declared ``Content-Length`` before reading, and while
    reading a body sent without one (chunked), which is then buffered so the API sees it; an upload
    (multipart) without one is not buffered but read as it comes, up to the limit (413 past it)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if wants_problem(request.path):
            content_type = request.META.get("CONTENT_TYPE", "")
            is_upload = content_type.startswith("multipart/form-data")
            limit_mb = settings.LORAFORGE_MAX_UPLOAD_MB if is_upload else settings.LORAFORGE_MAX_BODY_MB
            length = _declared_length(request)
            if length is None and is_upload and request.method in BODY_METHODS:
                _stream_undeclared_upload(request, limit_mb)
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


class _BoundedStream:
    """A server's request stream read as it comes; ``PayloadTooLarge`` once more than ``limit`` bytes arrived."""

    def __init__(self, source: Any, limit: int, detail: str) -> None:
        self._source = source
        self._limit = limit
        self._detail = detail
        self._count = 0

    def _counted(self, data: bytes) -> bytes:
        self._count += len(data)
        if self._count > self._limit:
            raise PayloadTooLarge(self._detail)
        return data

    def read(self, size: int | None = -1) -> bytes:
        wanted = self._limit + 1 - self._count
        return self._counted(self._source.read(wanted if size is None or size < 0 else min(size, wanted)))

    def readline(self, size: int | None = -1) -> bytes:
        wanted = self._limit + 1 - self._count
        return self._counted(self._source.readline(wanted if size is None or size < 0 else min(size, wanted)))


def _stream_undeclared_upload(request: HttpRequest, limit_mb: int) -> None:
    """A multipart body without ``Content-Length`` (chunked) under the WSGI handler, which would otherwise read it as
    empty: the parser reads the server's stream through a ``_BoundedStream``. The declared length becomes the
    limit (the most the parser may get); the upload handler of ``POST /import`` counts the stored bytes too."""
    source = getattr(request, "environ", {}).get("wsgi.input")
    if source is None or "chunked" not in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        return  # without a length and not chunked, there is no body (RFC 9112 6.3)
    limit = limit_mb * 1024 * 1024
    request._stream = _BoundedStream(source, limit, f"Upload too large (limit {limit_mb} MB)")  # type: ignore[assignment]
    request.META["CONTENT_LENGTH"] = str(limit)
