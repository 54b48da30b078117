"""``GET /media/<path>`` (SPEC 5.12) and the streamed file responses of the API.

Media is served with the API's authentication (open with ``LORAFORGE_MEDIA_PUBLIC`` or ``LORAFORGE_AUTH=off``)
and its problem+json errors. Under ASGI a file is streamed through an asynchronous iterator that reads each
chunk in a worker thread (Django would otherwise read a synchronous iterator whole before sending it).
"""

from __future__ import annotations

import mimetypes
import os
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import IO, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import URLPattern, re_path
from rest_framework.authentication import BaseAuthentication
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from loraforge.auth import OpenEndpoint
from loraforge.errors import NotFound
from loraforge.media import media_path
from loraforge.renderers import UTF8JSONRenderer

MEDIA_NOT_FOUND = "Media file not found"
MEDIA_CACHE_CONTROL = "private, max-age=86400"
CHUNK_SIZE = 256 * 1024
CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


class AnyMediaRenderer(BaseRenderer):
    """Lets any ``Accept`` negotiate (``image/png``, ``*/*``); the views answer with the file, never rendered
    data, and errors are JSON problems whatever was accepted."""

    media_type = "*/*"
    format = "file"
    charset = None
    render_style = "binary"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> Any:
        return data


FILE_RENDERERS = [UTF8JSONRenderer, AnyMediaRenderer]


# --- streamed files ------------------------------------------------------------------------------


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk


def _next_chunk(chunks: Iterator[bytes]) -> bytes | None:
    return next(chunks, None)


async def stream_async(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Each chunk of a blocking iterator produced in a worker thread, so the event loop never waits on it."""
    produce = sync_to_async(_next_chunk, thread_sensitive=False)
    try:
        while (chunk := await produce(chunks)) is not None:
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def streaming_response(request: HttpRequest | Request, chunks: Iterator[bytes], **kwargs: Any) -> StreamingHttpResponse:
    """A streamed response: asynchronous under ASGI, the plain iterator under WSGI (and the test client)."""
    django_request = request._request if isinstance(request, Request) else request
    content: Any = stream_async(chunks) if isinstance(django_request, ASGIRequest) else chunks
    return StreamingHttpResponse(content, **kwargs)


def file_response(
    request: HttpRequest | Request,
    handle: IO[bytes],
    *,
    content_type: str,
    cache_control: str | None = None,
    attachment_name: str | None = None,
) -> StreamingHttpResponse:
    """An opened file with its ``Content-Type`` and ``Content-Length`` (and the given caching/attachment)."""
    size = os.fstat(handle.fileno()).st_size
    response = streaming_response(request, _chunks(handle), content_type=content_type)
    response["Content-Length"] = str(size)
    if cache_control:
        response["Cache-Control"] = cache_control
    if attachment_name:
        response["Content-Disposition"] = f'attachment; filename="{attachment_name}"'
    return response


def guess_content_type(name: str) -> str:
    suffix = os.path.splitext(name)[1].lower()
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


# --- /media/<path> -------------------------------------------------------------------------------


def _media_public() -> bool:
    return bool(settings.LORAFORGE_MEDIA_PUBLIC) or not settings.LORAFORGE_AUTH


class MediaFileView(APIView):
    """A file under ``LORAFORGE_MEDIA_ROOT``; 404 problem for unsafe paths (``..``, NUL, backslashes, outside
    the root, symlinks escaping it) and missing files."""

    renderer_classes = FILE_RENDERERS
    schema = None  # not part of the REST API documentation

    def get_authenticators(self) -> list[BaseAuthentication]:
        return [] if _media_public() else super().get_authenticators()

    def get_permissions(self) -> Sequence[Any]:
        return [OpenEndpoint()] if _media_public() else super().get_permissions()

    def get(self, request: Request, path: str) -> StreamingHttpResponse:
        resolved = media_path(path)
        try:
            if resolved is None or not resolved.is_file():
                raise FileNotFoundError(path)
            handle = resolved.open("rb")
        except (OSError, ValueError):
            raise NotFound(MEDIA_NOT_FOUND) from None
        content_type = guess_content_type(resolved.name)
        return file_response(request, handle, content_type=content_type, cache_control=MEDIA_CACHE_CONTROL)


def media_route() -> URLPattern:
    """``<LORAFORGE_MEDIA_URL><path>`` (``/media/`` by default)."""
    prefix = re.escape(settings.MEDIA_URL.lstrip("/"))
    return re_path(rf"^{prefix}(?P<path>.*)$", MediaFileView.as_view(), name="media")
