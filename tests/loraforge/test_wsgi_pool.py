"""The WSGI pool the ASGI server runs Django's HTTP on (``loraforge.wsgi_pool``): the environ it builds, bodies read
before the thread takes the request or as the view reads them, responses sent whole or streamed with backpressure,
errors raised on the loop, and a thread that stops when the client goes away. Through the real server, every other
test of the API covers it too (``tests/loraforge/test_make_run.py``, ``tests/backups/test_export_server.py`` and
the browser tests among them)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from loraforge import wsgi_pool
from loraforge.wsgi_pool import BUFFER_MAX_BYTES, PREREAD_MAX_BYTES, WsgiPool, wsgi_environ

SCOPE: dict[str, Any] = {
    "type": "http", "http_version": "1.1", "method": "POST", "scheme": "http", "root_path": "",
    "path": "/api/v1/adapters/é", "query_string": b"page=2&q=a%20b", "server": ("127.0.0.1", 8000),
    "client": ("10.0.0.5", 51234),
    "headers": [
        (b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"), (b"content-length", b"11"),
        (b"x-api-key", b"lf_key"), (b"accept", b"text/html"), (b"accept", b"application/json"),
    ],
}  # fmt: skip


def scope_with(*, length: int | None, method: str = "POST", chunked: bool = False) -> dict[str, Any]:
    headers = [(name, value) for name, value in SCOPE["headers"] if name != b"content-length"]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    if chunked:
        headers.append((b"transfer-encoding", b"chunked"))
    return {**SCOPE, "method": method, "headers": headers}


class Client:
    """The ASGI side of one request: the body in pieces, what the server sent."""

    def __init__(self, body: bytes = b"", *, piece: int = 64 * 1024, send_delay: float = 0.0) -> None:
        self.pieces = [body[start : start + piece] for start in range(0, len(body), piece)] or [b""]
        self.received = 0
        self.sent: list[dict[str, Any]] = []
        self.send_delay = send_delay
        self.fail_after: int | None = None

    async def receive(self) -> dict[str, Any]:
        if self.received >= len(self.pieces):
            return {"type": "http.disconnect"}
        self.received += 1
        more = self.received < len(self.pieces)
        return {"type": "http.request", "body": self.pieces[self.received - 1], "more_body": more}

    async def send(self, message: dict[str, Any]) -> None:
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise OSError("client went away")
        if self.send_delay:
            await asyncio.sleep(self.send_delay)
        self.sent.append(message)

    @property
    def body(self) -> bytes:
        return b"".join(message.get("body", b"") for message in self.sent[1:])


def echo_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read()
    thread = threading.current_thread().name
    start_response("201 Created", [("Content-Type", "application/octet-stream"), ("X-Thread", thread)])
    return [body]


def run(pool: WsgiPool, scope: dict[str, Any], client: Client) -> None:
    asyncio.run(pool(scope, client.receive, client.send))


def test_the_environ_is_pep_3333_with_the_asgi_scope():
    environ = wsgi_environ(SCOPE, body=None)
    assert environ["asgi.scope"] is SCOPE
    assert environ["PATH_INFO"] == "/api/v1/adapters/é".encode().decode("latin-1")
    assert (environ["REQUEST_METHOD"], environ["QUERY_STRING"]) == ("POST", "page=2&q=a%20b")
    assert environ["SCRIPT_NAME"] == ""
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("127.0.0.1", "8000")
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == ("10.0.0.5", "51234")
    assert (environ["CONTENT_TYPE"], environ["CONTENT_LENGTH"]) == ("application/json", "11")
    assert environ["HTTP_X_API_KEY"] == "lf_key"
    assert environ["HTTP_ACCEPT"] == "text/html,application/json"  # repeated headers joined, as a WSGI server does
    assert "HTTP_CONTENT_LENGTH" not in environ
    mounted = wsgi_environ({**SCOPE, "root_path": "/lf", "path": "/lf/api/health"}, body=None)
    assert (mounted["SCRIPT_NAME"], mounted["PATH_INFO"]) == ("/lf", "/api/health")


def test_a_small_body_is_read_before_the_thread_and_the_response_is_sent_whole():
    pool = WsgiPool(echo_app, threads=1)
    client = Client(b'{"a": "b"}\n')
    run(pool, scope_with(length=11), client)
    assert [message["type"] for message in client.sent] == ["http.response.start", "http.response.body"]
    assert client.sent[0]["status"] == 201
    assert (b"content-type", b"application/octet-stream") in client.sent[0]["headers"]
    assert dict(client.sent[0]["headers"])[b"x-thread"].startswith(b"http")
    assert client.sent[1] == {"type": "http.response.body", "body": b'{"a": "b"}\n'}


@pytest.mark.parametrize("length", [PREREAD_MAX_BYTES + 1, None])
def test_a_large_or_chunked_body_is_read_as_the_view_reads_it(length):
    payload = b"".join(b"line %d of the body\n" % number for number in range(70_000))[: PREREAD_MAX_BYTES + 1]
    seen: dict[str, Any] = {}

    def reading_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        seen["stream"] = type(stream).__name__
        first = stream.readline()
        partial = stream.readline(5)
        rest = stream.read(1000) + stream.read()
        seen["body"] = first + partial + rest
        seen["first"], seen["partial"] = first, partial
        start_response("200 OK", [])
        return [b"ok"]

    client = Client(payload)
    run(WsgiPool(reading_app, threads=1), scope_with(length=length, chunked=length is None), client)
    assert seen["stream"] == "StreamedBody"
    assert seen["first"] == b"line 0 of the body\n"
    assert seen["partial"] == b"line "
    assert seen["body"] == payload
    assert client.sent[-1] == {"type": "http.response.body", "body": b"ok"}


def test_a_request_with_neither_a_length_nor_chunks_has_no_body_to_wait_for():
    client = Client(b"ignored")
    run(WsgiPool(echo_app, threads=1), scope_with(length=None, method="DELETE"), client)
    assert client.received == 0
    assert client.sent[-1]["body"] == b""


def test_a_large_response_is_streamed_and_the_thread_waits_for_the_client():
    chunk = b"x" * (64 * 1024)
    count = 40  # 2.5 MiB, ten times the buffer
    produced: list[int] = []
    ahead: list[int] = []
    client = Client(send_delay=0.002)

    def streaming_app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/zip")])
        for number in range(count):
            produced.append(number)
            ahead.append(len(produced) - max(0, len(client.sent) - 1))
            yield chunk

    run(WsgiPool(streaming_app, threads=1), scope_with(length=None, method="GET"), client)
    assert client.sent[0]["type"] == "http.response.start"
    assert client.body == chunk * count
    assert client.sent[-1] == {"type": "http.response.body", "body": b""}
    assert all(message.get("more_body") for message in client.sent[1:-1])
    # The thread never got further ahead of the client than the buffer plus the queue allow.
    assert max(ahead) <= BUFFER_MAX_BYTES // len(chunk) + wsgi_pool.STREAM_QUEUE_CHUNKS + 3


def test_an_error_before_the_response_is_raised_on_the_loop():
    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("view exploded")

    client = Client()
    with pytest.raises(RuntimeError, match="view exploded"):
        run(WsgiPool(broken, threads=1), scope_with(length=0, method="GET"), client)
    assert client.sent == []


def test_an_error_while_streaming_ends_the_response_with_it():
    def failing_stream(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"y" * (BUFFER_MAX_BYTES + 1)
        raise RuntimeError("disk gone")

    client = Client()
    with pytest.raises(RuntimeError, match="disk gone"):
        run(WsgiPool(failing_stream, threads=1), scope_with(length=None, method="GET"), client)
    assert client.body == b"y" * (BUFFER_MAX_BYTES + 1)


def test_a_client_gone_mid_stream_stops_the_thread_and_frees_it():
    closed = threading.Event()

    def endless(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            while True:
                yield b"z" * (64 * 1024)
        finally:
            closed.set()

    pool = WsgiPool(endless, threads=1)
    client = Client()
    client.fail_after = 10
    following = Client(b"again")

    async def two_requests() -> None:
        with pytest.raises(OSError, match="client went away"):
            await pool(scope_with(length=None, method="GET"), client.receive, client.send)
        stopped = await asyncio.get_running_loop().run_in_executor(None, closed.wait, 5)
        assert stopped, "the response was not closed: the pool thread is stuck"
        pool.app = echo_app  # the only thread of the pool serves the next request
        await asyncio.wait_for(pool(scope_with(length=5), following.receive, following.send), 5)

    asyncio.run(two_requests())
    assert following.sent[-1]["body"] == b"again"


def test_a_request_cancelled_while_its_thread_works_leaves_nothing_waiting():
    release = threading.Event()

    def slow(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        release.wait(5)
        start_response("200 OK", [])
        return [b"late"]

    pool = WsgiPool(slow, threads=1)
    following = Client(b"next")

    async def cancelled_then_next() -> int:
        request = asyncio.ensure_future(pool(scope_with(length=None, method="GET"), Client().receive, Client().send))
        await asyncio.sleep(0.05)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        release.set()
        pool.app = echo_app  # the thread finishes the cancelled response, then serves the next request
        await asyncio.wait_for(pool(scope_with(length=4), following.receive, following.send), 5)
        return len([task for task in asyncio.all_tasks() if task is not asyncio.current_task()])

    assert asyncio.run(cancelled_then_next()) == 0
    assert following.sent[-1]["body"] == b"next"


def test_the_pool_serves_http_only():
    with pytest.raises(ValueError, match="HTTP only"):
        asyncio.run(WsgiPool(echo_app, threads=1)({"type": "websocket"}, Client().receive, Client().send))
