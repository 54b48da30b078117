"""Django's WSGI handler on a fixed pool of threads inside the ASGI server, handed each request once.

A request whose body declares at most ``PREREAD_MAX_BYTES`` is read on the event loop before a pool thread takes
it, and a response of at most ``BUFFER_MAX_BYTES`` is collected by the thread and sent by the loop when the thread
is done: one hand-over from the loop to a thread and one back. Bridging every message instead (the body's
``receive``, the response start, each body chunk and the end, each a blocking call from the thread into the loop,
as a2wsgi does) cost four hand-overs per ``POST``, and each one waits for the GIL: under 8 concurrent clients a
thread waiting for the loop waited behind the other threads' Python.

Larger or undeclared (chunked) bodies are read as the view reads them, and a response past ``BUFFER_MAX_BYTES``
(an export, a backup download, an image) is streamed: what was collected goes first, then every chunk through a
bounded queue, so the thread never runs ahead of the client by more than ``STREAM_QUEUE_CHUNKS`` chunks.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

PREREAD_MAX_BYTES = 1024 * 1024
BUFFER_MAX_BYTES = 256 * 1024
STREAM_QUEUE_CHUNKS = 8

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_END = object()  # the last item of a streamed response


class ClientGone(Exception):
    """The loop stopped sending a streamed response (the client went away): the thread stops producing it."""


def declared_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def chunked(scope: dict[str, Any]) -> bool:
    return any(name == b"transfer-encoding" and b"chunked" in value.lower() for name, value in scope.get("headers", ()))


def wsgi_environ(scope: dict[str, Any], body: Any) -> dict[str, Any]:
    """The WSGI environ of an ASGI HTTP scope (PEP 3333 strings: UTF-8 bytes read as latin-1); the scope itself
    stays available as ``asgi.scope``."""
    root = scope.get("root_path", "").encode("utf-8").decode("latin-1")
    path = scope["path"].encode("utf-8").decode("latin-1")
    if root and path.startswith(root):
        path = path[len(root) :]
    server_name, server_port = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "asgi.scope": scope,
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root,
        "PATH_INFO": path,
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "SERVER_NAME": server_name,
        "SERVER_PORT": str(server_port or 0),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client[0], str(client[1])
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        key = name if name in ("CONTENT_LENGTH", "CONTENT_TYPE") else "HTTP_" + name
        value = raw_value.decode("latin-1")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


async def read_body(receive: Callable[[], Any], length: int) -> bytes:
    """The whole body of a request that declared ``length`` bytes (shorter if the client went away)."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        parts.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False) or size >= length:
            break
    return b"".join(parts)


class StreamedBody:
    """``wsgi.input`` of a large or chunked body, read from the thread as the view asks for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, receive: Callable[[], Any]) -> None:
        self._loop = loop
        self._receive = receive
        self._buffer = bytearray()
        self._more = True

    def _fill(self) -> None:
        message = asyncio.run_coroutine_threadsafe(self._receive(), self._loop).result()
        if message["type"] != "http.request":
            self._more = False
            return
        self._buffer.extend(message.get("body", b""))
        self._more = bool(message.get("more_body", False))

    def read(self, size: int | None = -1) -> bytes:
        while self._more and (size is None or size < 0 or len(self._buffer) < size):
            self._fill()
        end = len(self._buffer) if size is None or size < 0 else min(size, len(self._buffer))
        data = bytes(self._buffer[:end])
        del self._buffer[:end]
        return data

    def readline(self, size: int | None = -1) -> bytes:
        limit = None if size is None or size < 0 else size
        while True:
            newline = self._buffer.find(b"\n", 0, limit)
            if newline >= 0:
                return self.read(newline + 1)
            if (limit is not None and len(self._buffer) >= limit) or not self._more:
                return self.read(limit)
            self._fill()


class _Exchange:
    """One request's response, produced by a pool thread: collected, or streamed once it outgrows the buffer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.handover: asyncio.Future[bool] = loop.create_future()  # True: streaming; False: collected, done
        self.queue: asyncio.Queue[Any] = asyncio.Queue(STREAM_QUEUE_CHUNKS)
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.streaming = False
        self.abandoned = False

    # --- in the pool thread -------------------------------------------------------------------------------
    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
        if exc_info is not None and self.streaming:
            raise exc_info[1].with_traceback(exc_info[2])  # too late to change the status: PEP 3333
        self.status = int(status.split(" ", 1)[0])
        self.headers = [
            (name.strip().lower().encode("latin-1"), value.strip().encode("latin-1")) for name, value in headers
        ]
        return self.write

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self.streaming:
            self._put(chunk)
            return
        self.chunks.append(chunk)
        self.size += len(chunk)
        if self.size > BUFFER_MAX_BYTES:
            self.streaming = True
            self._resolve(True)
            collected, self.chunks = self.chunks, []
            for part in collected:
                self._put(part)

    def run(self, app: WsgiApp, environ: dict[str, Any]) -> None:
        try:
            iterable = app(environ, self.start_response)
            try:
                for chunk in iterable:
                    self.write(chunk)
            finally:
                close = getattr(iterable, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:  # handed to the loop, which raises it there
            if self.streaming:
                self._put(exc, final=True)
            else:
                self.loop.call_soon_threadsafe(_fail, self.handover, exc)
            return
        if self.streaming:
            self._put(_END, final=True)
        else:
            self._resolve(False)

    def _resolve(self, streaming: bool) -> None:
        self.loop.call_soon_threadsafe(_succeed, self.handover, streaming)

    def _put(self, item: Any, *, final: bool = False) -> None:
        """Queue ``item`` for the loop, waiting while the queue is full. Once the loop gave up on the response,
        the final item is dropped and any other raises ``ClientGone``."""
        if self.abandoned:
            if final:
                return
            raise ClientGone()
        put = self.queue.put(item)
        try:
            future = asyncio.run_coroutine_threadsafe(put, self.loop)
        except RuntimeError:  # the loop is closed: the server stopped
            put.close()
            raise ClientGone() from None
        future.result()

    # --- on the event loop -------------------------------------------------------------------------------
    async def stream(self, send: Callable[[dict[str, Any]], Any]) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
            while (item := await self.queue.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                await send({"type": "http.response.body", "body": item, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except BaseException:
            self.abandon()
            raise

    def abandon(self) -> None:
        """Stop sending: the thread's next chunk raises ``ClientGone``; what it queued is dropped, so a thread waiting
        on the full queue gets its place and stops at its next chunk. Nothing is left waiting on the loop."""
        self.abandoned = True
        while not self.queue.empty():
            self.queue.get_nowait()


def _succeed(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future[bool], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


class WsgiPool:
    """An ASGI application (HTTP only) that runs a WSGI application on ``threads`` long-lived threads."""

    def __init__(self, app: WsgiApp, *, threads: int) -> None:
        self.app = app
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="http")

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            raise ValueError(f"WsgiPool serves HTTP only, not {scope['type']}")
        loop = asyncio.get_running_loop()
        length = declared_length(scope)
        if length is None and not chunked(scope):
            length = 0  # neither a length nor chunked: no body (RFC 9112 6.3)
        if length is not None and length <= PREREAD_MAX_BYTES:
            body: Any = io.BytesIO(await read_body(receive, length) if length else b"")
        else:
            body = StreamedBody(loop, receive)
        exchange = _Exchange(loop)
        context = contextvars.copy_context()
        loop.run_in_executor(self.executor, context.run, exchange.run, self.app, wsgi_environ(scope, body))
        try:
            streaming = await exchange.handover
        except asyncio.CancelledError:
            exchange.abandon()
            raise
        if streaming:
            await exchange.stream(send)
            return
        await send({"type": "http.response.start", "status": exchange.status, "headers": exchange.headers})
        await send({"type": "http.response.body", "body": b"".join(exchange.chunks)})
