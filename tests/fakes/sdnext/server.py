"""FakeSDNext: a standard-library HTTP server speaking SDNext's /sdapi/v1 protocol, with fault switches."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import protocol, routes

FAULTS = frozenset(
    {
        "error_500",
        "validation_422",
        "sampler_404",
        "rate_limit_429",
        "no_images",
        "hang",
        "reset",
        "refused",
        "invalid_json",
        "bad_images",
        "empty_info",
    }
)
DEFAULT_SAMPLERS = ["UniPC", "DDIM", "Euler", "Euler a", "DPM++ 2M", "DPM++ 2M SDE", "DPM++ SDE", "Heun", "LCM", "DEIS"]
DEFAULT_LORAS: list[dict[str, Any]] = [
    {"name": "detail_tweaker", "alias": "detail_tweaker", "path": "/models/Lora/detail_tweaker.safetensors"},
    {"name": "my_style_v1", "alias": "MyStyle", "path": "/models/Lora/styles/my.style.v1.safetensors"},
    {"name": "pixel_art", "alias": "pixel_art", "path": "/models/Lora/pixel_art.safetensors"},
]
TXT2IMG = "/sdapi/v1/txt2img"
UNAUTHENTICATED_PATHS = frozenset({"/sdapi/v1/network/thumb", "/js"})


@dataclass
class RecordedRequest:
    """One request as the fake received it; `body` is the parsed JSON (None when absent or not JSON)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw_body: bytes
    received_at: float = 0.0  # time.time() when the request line arrived (benchmarks, ordering checks)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSDNext

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that go away (timeouts, resets, stop()) are normal here."""


class FakeSDNext:
    def __init__(
        self,
        *,
        auth: tuple[str, str] | None = None,
        steps_delay: float = 0.01,
        loras: list[dict[str, Any]] | None = None,
        samplers: list[str] | None = None,
    ) -> None:
        from .state import ProgressState

        self.auth = auth
        self.steps_delay = steps_delay
        source = DEFAULT_LORAS if loras is None else loras
        self.loras: list[dict[str, Any]] = [{"alias": e["name"], "metadata": {}} | dict(e) for e in source]
        self.samplers = list(DEFAULT_SAMPLERS if samplers is None else samplers)
        self.options: dict[str, Any] = {
            "sd_model_checkpoint": "sdxl-base-1.0",
            "samples_format": "jpg",
            "return_grid": True,
            "keep_incomplete": True,
            "extra_networks_default_multiplier": 1.0,
            "sequential_seed": True,
            "server_rate_limit": 300,
            "lora_fuse_native": True,
            "lora_apply_te": False,
        }
        self.requests: list[RecordedRequest] = []
        self.interrupts = 0
        self.skips = 0
        self.fault: str | None = None
        self.loaded_loras: list[str] = []
        self.state = ProgressState()
        self.generation_lock = threading.Lock()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.url = ""
        self.port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._record_lock = threading.Lock()

    # lifecycle
    def start(self, port: int = 0) -> str:
        """Bind 127.0.0.1 (a free port unless given), serve in a daemon thread, return the base URL."""
        self.stopping.clear()
        self._listen(port)
        return self.url

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        self._close_listener()
        self._drop_connections()

    def serve_forever(self, port: int) -> None:
        """Serve in the foreground (the command-line entry point)."""
        self.start(port)
        try:
            while True:
                time.sleep(3600)
        finally:
            self.stop()

    def set_fault(self, fault: str | None) -> None:
        """Apply a fault to the next txt2img calls until cleared; "refused" closes the listening socket."""
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose one of {sorted(FAULTS)}")
        previous, self.fault = self.fault, fault
        if fault == "refused" and previous != "refused":
            self._close_listener()
            self._drop_connections()
        elif previous == "refused" and fault != "refused" and not self.stopping.is_set():
            self._listen(self.port)
        if previous == "hang" and fault != "hang":
            self.wake.set()

    def _listen(self, port: int) -> None:
        server = _Server(("127.0.0.1", port), _Handler)
        server.fake = self
        self._server = server
        self.port = server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=server.serve_forever, args=(0.02,), name="fake-sdnext", daemon=True)
        self._thread.start()

    def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def _drop_connections(self) -> None:
        with self._record_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._record_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _record(self, request: RecordedRequest) -> None:
        with self._record_lock:
            self.requests.append(request)

    def _authorized(self, header: str | None) -> str | None:
        """None when the request may pass, else the 401 detail SDNext sends."""
        if self.auth is None:
            return None
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() != "basic" or not value:
            return "Not authenticated"
        try:
            user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "Unauthorized"
        return None if (user, password) == self.auth else "Unauthorized"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        self.server.fake._track(self.connection, add=False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `fake.requests` instead."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _read_request(self) -> RecordedRequest:
        received_at = time.time()
        url = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        headers = dict(self.headers.items())
        return RecordedRequest(self.command, url.path, dict(parse_qsl(url.query)), headers, body, raw, received_at)

    def _dispatch(self) -> None:
        started = time.perf_counter()
        fake = self.server.fake
        request = self._read_request()
        fake._record(request)
        methods = routes.ROUTES.get(request.path)
        if methods is None:
            return self._send(404, protocol.NOT_FOUND, started)
        if request.method not in methods:
            return self._send(405, protocol.METHOD_NOT_ALLOWED, started, {"Allow": ", ".join(methods)})
        denied = fake._authorized(self.headers.get("Authorization"))
        if denied and request.path not in UNAUTHENTICATED_PATHS:
            return self._send(401, protocol.envelope(401, denied), started)
        if request.method == "POST" and request.raw_body:
            _, invalid = protocol.parse_body(request.raw_body)
            if invalid is not None:
                return self._send(422, invalid, started)
        if request.path == TXT2IMG and fake.fault is not None:
            return self._txt2img_fault(fake, request, started)
        status, body = methods[request.method](fake, request)
        return self._send(status, body, started)

    def _txt2img_fault(self, fake: FakeSDNext, request: RecordedRequest, started: float) -> None:
        fault = fake.fault
        if fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return None
        if fault == "error_500":
            return self._send(500, protocol.crash_envelope("RuntimeError", "CUDA out of memory"), started)
        if fault == "validation_422":
            return self._send(422, protocol.example_422(), started)
        if fault == "sampler_404":
            return self._send(404, protocol.sampler_not_found(), started)
        if fault == "invalid_json":
            return self._send_raw(200, b'{"images": ["/9j/4AAQSkZJRg', "application/json", started)
        if fault == "no_images":
            params, _ = protocol.validate_txt2img(request.body if isinstance(request.body, dict) else {})
            return self._send(200, {"images": [], "parameters": params, "info": ""}, started)
        status, body = routes.txt2img(fake, request)
        if fault == "rate_limit_429":  # SDNext checks the limit after the handler ran: the images are lost
            detail = f"{self.client_address[0]}:{request.path}: rate limit exceeded"
            return self._send(429, protocol.envelope(429, detail), started)
        if fault == "bad_images" and status == 200:
            body["images"] = ["@@not*base64@@" for _ in body["images"]] or ["@@not*base64@@"]
        if fault == "empty_info" and status == 200:
            body["info"] = ""
        return self._send(status, body, started)

    def _send(self, status: int, body: Any, started: float, headers: dict[str, str] | None = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode("utf-8")
        return self._send_raw(status, payload, "application/json", started, headers)

    def _send_raw(
        self, status: int, payload: bytes, content_type: str, started: float, headers: dict[str, str] | None = None
    ) -> None:
        if self.server.fake.stopping.is_set():
            self.close_connection = True
            return None
        try:
            self.send_response(status)
            if status != 204:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("X-Process-Time", f"{time.perf_counter() - started:.4f}")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True
        return None
