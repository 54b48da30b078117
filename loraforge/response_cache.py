"""A small in-process LRU of rendered JSON bodies, keyed by a data version.

Callers pass a version that changes whenever the underlying rows change (for adapters, a counter
bumped by database triggers), so an entry is never stale: a write makes every old key unreachable,
and the first request that sees the new version drops them (they held memory until evicted: up to
the entry limit of bodies nobody could read, RSS that grew with every write burst). Bodies are
bytes kept in this process only: nothing is serialised to a shared cache, nothing is pickled.
``LORAFORGE_API_CACHE_ENTRIES=0`` turns it off.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from django.conf import settings
from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from loraforge.renderers import JSON_CONTENT_TYPE, UTF8JSONRenderer

MAX_BODY_BYTES = 1024 * 1024


class ResponseCache:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._version: Hashable | None = None  # of the entries held
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_render(self, key: Hashable, render: Callable[[], bytes], *, version: Hashable | None = None) -> bytes:
        """The body under ``key``, rendered on a miss; with ``version``, entries kept under another version are
        dropped first (the key must include the version), and a body rendered for a version that has been
        replaced meanwhile is not kept."""
        if self.max_entries <= 0:
            return render()
        with self._lock:
            if version is not None and version != self._version:
                self._entries.clear()
                self._version = version
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return body
            self.misses += 1
        body = render()
        if len(body) <= MAX_BODY_BYTES:
            with self._lock:
                if version is not None and version != self._version:
                    return body
                self._entries[key] = body
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return body

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._version = None
            self.hits = self.misses = 0


_caches: dict[str, ResponseCache] = {}
_caches_lock = threading.Lock()


def response_cache(name: str) -> ResponseCache:
    with _caches_lock:
        if name not in _caches:
            _caches[name] = ResponseCache(int(settings.LORAFORGE_API_CACHE_ENTRIES))
        return _caches[name]


def cached_json(
    request: Request, *, cache: str, version: Hashable | None, key: Hashable, respond: Callable[[], Response]
) -> Response | HttpResponse:
    """A 200 JSON answer from the named cache under ``(version, key)``, rendered by ``respond()`` on a miss.
    Without a version (its row is missing) or for another format (the browsable API) it always renders."""
    if version is None or request.accepted_renderer.format != "json":
        return respond()

    def render() -> bytes:
        return bytes(UTF8JSONRenderer().render(respond().data))

    body = response_cache(cache).get_or_render((version, key), render, version=version)
    return HttpResponse(body, content_type=JSON_CONTENT_TYPE)
