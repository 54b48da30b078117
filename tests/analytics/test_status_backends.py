"""Generation backends in ``GET /system/status`` (SPEC 6.9, 6.3.7): cached health, stale entries re-checked against
the real fake SDNext, and a hanging server that cannot hold the answer past its budget."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from django.core.cache import cache

from generation.backends.services import backend_health_record
from generation.models import GenerationBackend

pytestmark = pytest.mark.django_db

URL = "/api/v1/system/status"


@pytest.fixture(autouse=True)
def _empty_health_cache() -> None:
    cache.clear()


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """A server that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def _backend(name: str, url: str, **fields) -> GenerationBackend:
    return GenerationBackend.objects.create(name=name, url=url, **fields)


def test_a_stale_backend_is_checked_against_the_server(api, worker_running, fake_sdnext):
    backend = _backend("default", fake_sdnext.url, is_default=True)
    body = api.get(URL).json()
    [entry] = body["backends"]
    assert entry["id"] == str(backend.pk)
    assert (entry["name"], entry["url"], entry["enabled"]) == ("default", fake_sdnext.url, True)
    assert (entry["healthy"], entry["busy"], entry["last_error"]) == (True, False, None)
    assert entry["version"]["app"]
    assert entry["last_checked_at"].endswith("Z")
    assert body["sdnext"] == {
        "configured": True,
        "base_url": fake_sdnext.url,
        "available": True,
        "error": None,
        "checked_at": entry["last_checked_at"],
    }
    assert body["warnings"] == []
    backend.refresh_from_db()
    assert backend.healthy is True  # recorded on the row and in the cache


def test_an_unreachable_backend_warns(api, worker_running, fake_sdnext):
    url = fake_sdnext.url
    fake_sdnext.stop()
    _backend("default", url, is_default=True)
    body = api.get(URL).json()
    assert body["warnings"] == ["Generation backend 'default' is unreachable: connection refused"]
    assert body["status"] == "warning"
    assert body["sdnext"]["available"] is False
    assert body["sdnext"]["error"] == "connection refused"
    assert body["backends"][0]["healthy"] is False


def test_cached_health_is_used_without_a_probe(api, worker_running, fake_sdnext):
    backend = _backend("one", fake_sdnext.url)
    backend_health_record(backend=backend, healthy=False, error="HTTP 401")
    before = len(fake_sdnext.requests)
    body = api.get(URL).json()
    assert len(fake_sdnext.requests) == before
    assert body["warnings"] == ["Generation backend 'one' is unreachable: HTTP 401"]


def test_a_disabled_backend_is_neither_probed_nor_a_warning(api, worker_running, fake_sdnext):
    _backend("off", fake_sdnext.url, enabled=False)
    body = api.get(URL).json()
    assert fake_sdnext.requests == []
    assert body["warnings"] == []
    assert body["backends"][0]["healthy"] is None
    assert body["sdnext"]["configured"] is False


def test_a_hanging_backend_cannot_hold_the_status_past_its_budget(api, worker_running, hanging_url, fake_sdnext):
    _backend("hung", hanging_url)
    _backend("fine", fake_sdnext.url)
    started = time.monotonic()
    response = api.get(URL)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert elapsed < 3.0
    body = response.json()
    assert body["warnings"] == ["Generation backend 'hung' is unreachable: timeout"]
    assert {entry["name"]: entry["healthy"] for entry in body["backends"]} == {"fine": True, "hung": False}
    started = time.monotonic()
    api.get(URL)  # the timeout is cached: no second wait
    assert time.monotonic() - started < 1.5


def test_the_sdnext_block_describes_the_default_backend_else_the_first_enabled(api, worker_running, fake_sdnext):
    _backend("alpha", "http://127.0.0.1:9", enabled=False)
    _backend("beta", fake_sdnext.url)
    assert api.get(URL).json()["sdnext"]["base_url"] == fake_sdnext.url


def test_several_stale_backends_are_checked_in_parallel(api, worker_running, hanging_url):
    for index in range(4):
        _backend(f"hung-{index}", hanging_url)
    started = time.monotonic()
    body = api.get(URL).json()
    assert time.monotonic() - started < 3.0
    assert len(body["warnings"]) == 4
