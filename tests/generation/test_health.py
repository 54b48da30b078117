"""Backend health against the fake SDNext over real HTTP (SPEC 6.3.7); our client is never patched."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from generation.backends.services import backend_check, backend_health_record, backends_check
from generation.models import GenerationBackend
from tests.fakes.sdnext import FakeSDNext
from tests.generation.factories import GenerationBackendFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/generation/backends"
VERSION_PATH = "/sdapi/v1/version"


@pytest.fixture
def secured_sdnext() -> Iterator[FakeSDNext]:
    fake = FakeSDNext(auth=("forge", "letmein"))
    fake.start()
    yield fake
    fake.stop()


def version_calls(fake: FakeSDNext) -> int:
    return sum(1 for request in fake.requests if request.path == VERSION_PATH)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Reply(BaseHTTPRequestHandler):
    status = 200
    body = b""

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def odd_server() -> Iterator[Callable[[int, bytes], str]]:
    """A stand-in for replies the fake does not give on /version: a 500, a JSON list."""
    servers: list[ThreadingHTTPServer] = []

    def serve(status: int, body: bytes) -> str:
        handler = type("Handler", (_Reply,), {"status": status, "body": body})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_healthy_backend_stores_the_version_info(fake_sdnext):
    backend = backend_check(backend=GenerationBackendFactory(url=fake_sdnext.url))
    backend.refresh_from_db()
    assert backend.healthy is True
    assert backend.last_error is None
    assert backend.last_checked_at is not None
    assert backend.version_info == {"app": "sd.next", "commit": "f4ke5d1", "branch": "master", "updated": "2026-07-23"}


def test_health_request_is_a_get_of_the_version_route_with_json_accept(fake_sdnext):
    backend_check(backend=GenerationBackendFactory(url=fake_sdnext.url))
    [request] = [request for request in fake_sdnext.requests if request.path == VERSION_PATH]
    assert request.method == "GET"
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers["accept"] == "application/json"
    assert headers["user-agent"].startswith("LoRAForge/")


def test_refused_connection_is_unhealthy(fake_sdnext):
    backend = GenerationBackendFactory(url=fake_sdnext.url)
    fake_sdnext.set_fault("refused")
    backend = backend_check(backend=backend)
    backend.refresh_from_db()
    assert (backend.healthy, backend.last_error) == (False, "connection refused")


def test_nothing_listening_is_connection_refused(db):
    backend = backend_check(backend=GenerationBackendFactory(url=f"http://127.0.0.1:{free_port()}"))
    assert (backend.healthy, backend.last_error) == (False, "connection refused")


def test_credentials_are_sent_as_http_basic(secured_sdnext):
    backend = GenerationBackendFactory(url=secured_sdnext.url, username="forge", password="letmein")
    assert backend_check(backend=backend).healthy is True


def test_non_latin_credentials_are_sent_as_utf8(fake_sdnext):
    backend = GenerationBackendFactory(url=fake_sdnext.url, username="f\U0010d3c4rge", password="pässwörd✓")
    assert backend_check(backend=backend).healthy is True
    [request] = [request for request in fake_sdnext.requests if request.path == VERSION_PATH]
    scheme, _, token = {k.lower(): v for k, v in request.headers.items()}["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token).decode("utf-8") == "f\U0010d3c4rge:pässwörd✓"


@pytest.mark.parametrize(("username", "password"), [(None, None), ("forge", "wrong"), ("forge", None)])
def test_missing_or_wrong_credentials_are_http_401(secured_sdnext, username, password):
    backend = GenerationBackendFactory(url=secured_sdnext.url, username=username, password=password)
    backend = backend_check(backend=backend)
    backend.refresh_from_db()
    assert (backend.healthy, backend.last_error) == (False, "HTTP 401")


def test_server_error_is_http_500(odd_server):
    backend = backend_check(backend=GenerationBackendFactory(url=odd_server(500, b'{"error": "boom"}')))
    assert (backend.healthy, backend.last_error) == (False, "HTTP 500")


@pytest.mark.parametrize("body", [b"[1, 2]", b"<html>", b""])
def test_a_200_without_a_json_object_is_an_invalid_response(odd_server, body):
    backend = backend_check(backend=GenerationBackendFactory(url=odd_server(200, body)))
    assert (backend.healthy, backend.last_error) == (False, "invalid response")


def test_results_are_served_from_the_cache_within_the_ttl(fake_sdnext, settings):
    settings.LORAFORGE_BACKEND_HEALTH_TTL = 60
    backend = GenerationBackendFactory(url=fake_sdnext.url)
    backends_check(backends=[backend])
    fake_sdnext.set_fault("refused")
    [cached] = backends_check(backends=[GenerationBackend.objects.get(pk=backend.pk)])
    assert cached.healthy is True
    assert version_calls(fake_sdnext) == 1


def test_a_zero_ttl_disables_the_cache(fake_sdnext, settings):
    settings.LORAFORGE_BACKEND_HEALTH_TTL = 0
    backend = GenerationBackendFactory(url=fake_sdnext.url)
    backends_check(backends=[backend])
    backends_check(backends=[backend])
    assert version_calls(fake_sdnext) == 2


def test_check_endpoint_bypasses_the_cache(api, fake_sdnext, settings):
    settings.LORAFORGE_BACKEND_HEALTH_TTL = 60
    backend = GenerationBackendFactory(url=fake_sdnext.url)
    backends_check(backends=[backend])
    fake_sdnext.set_fault("refused")
    response = api.post(f"{URL}/{backend.pk}/check")
    assert response.status_code == 200
    item = response.json()["backend"]
    assert (item["healthy"], item["last_error"]) == (False, "connection refused")


def test_check_endpoint_returns_the_version(api, fake_sdnext):
    backend = GenerationBackendFactory(url=fake_sdnext.url)
    item = api.post(f"{URL}/{backend.pk}/check").json()["backend"]
    assert item["healthy"] is True
    assert item["version"]["commit"] == "f4ke5d1"
    assert item["last_checked_at"].endswith("Z")


def test_list_makes_no_live_check(api, fake_sdnext):
    GenerationBackendFactory(url=fake_sdnext.url)
    item = api.get(URL).json()["backends"][0]
    assert item["healthy"] is None
    assert version_calls(fake_sdnext) == 0


def test_several_backends_are_checked_together(fake_sdnext, secured_sdnext):
    good = GenerationBackendFactory(url=fake_sdnext.url)
    denied = GenerationBackendFactory(url=secured_sdnext.url)
    gone = GenerationBackendFactory(url=f"http://127.0.0.1:{free_port()}")
    results = {backend.pk: backend.last_error for backend in backends_check(backends=[good, denied, gone], live=True)}
    assert results == {good.pk: None, denied.pk: "HTTP 401", gone.pk: "connection refused"}


def test_a_recorded_job_outcome_updates_row_and_cache(fake_sdnext, settings):
    settings.LORAFORGE_BACKEND_HEALTH_TTL = 60
    backend = GenerationBackendFactory(url=fake_sdnext.url)
    backend_health_record(backend=backend, healthy=False, error="HTTP 401")
    [cached] = backends_check(backends=[GenerationBackend.objects.get(pk=backend.pk)])
    assert (cached.healthy, cached.last_error) == (False, "HTTP 401")
    assert version_calls(fake_sdnext) == 0
