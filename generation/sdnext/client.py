"""HTTP transport to one SDNext server (SPEC 6.2.5, 6.3.1, 6.3.5): a ``requests.Session`` per backend and
task, HTTP Basic auth, JSON accept header, our User-Agent. Passwords are never logged."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from urllib3.exceptions import ReadTimeoutError

from generation.backends.health import USER_AGENT, basic_auth, connection_reason
from generation.models import GenerationBackend

logger = logging.getLogger("loraforge.generation")

TXT2IMG_PATH = "/sdapi/v1/txt2img"
PROGRESS_PATH = "/sdapi/v1/progress"
INTERRUPT_PATH = "/sdapi/v1/interrupt"
POLL_TIMEOUT = (5.0, 5.0)
INTERRUPT_TIMEOUT = (5.0, 5.0)
RETRY_BASE_DELAY = 1.0  # seconds before the 2nd attempt; doubled before each further one (tests shorten it)
TIMEOUT_INTERRUPTS = 3
INTERRUPT_SPACING = 0.5


@dataclass(frozen=True)
class Reply:
    """An HTTP answer to txt2img: status and raw body (mapped by ``outcomes`` and ``response``)."""

    status: int
    body: bytes


class Unreachable(Exception):
    """No connection after every attempt (refused, DNS, connect timeout, reset before a response)."""

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


class ReadTimedOut(Exception):
    """SDNext accepted the request but did not answer within the read timeout."""


class BrokenResponse(Exception):
    """The answer started but could not be read completely (not retried)."""


def read_timeout(backend: GenerationBackend) -> int:
    """The txt2img read timeout of a backend: its ``timeout_seconds`` or ``SDNEXT_TIMEOUT``."""
    return int(backend.timeout_seconds or settings.SDNEXT_TIMEOUT)


def _is_read_timeout(exc: requests.RequestException) -> bool:
    if isinstance(exc, requests.ReadTimeout):
        return True
    return any(isinstance(arg, ReadTimeoutError) for arg in exc.args)


def failure_reason(exc: requests.RequestException) -> str:
    """A short reason for a connection failure: connect timeout, reset, else ``health.connection_reason``."""
    if isinstance(exc, requests.ConnectTimeout):
        return "connect timeout"
    reason = connection_reason(exc)
    if reason == "connection failed" and ("reset" in repr(exc).lower() or "aborted" in str(exc).lower()):
        return "connection reset"
    return reason


class SDNextClient:
    """One server; use as a context manager (or call ``close``). Not shared between threads."""

    def __init__(self, *, url: str, username: str | None, password: str | None, read_timeout: float) -> None:
        self.url = url.rstrip("/")
        self.read_timeout = read_timeout
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
        self.session.auth = basic_auth(username, password)

    @classmethod
    def for_backend(cls, backend: GenerationBackend) -> SDNextClient:
        return cls(
            url=backend.url, username=backend.username, password=backend.password, read_timeout=read_timeout(backend)
        )

    def __enter__(self) -> SDNextClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def txt2img(self, payload: dict[str, Any]) -> Reply:
        """``POST /sdapi/v1/txt2img``; connection errors are retried ``SDNEXT_RETRIES`` times in total with
        1 s, 2 s, 4 s … between attempts. HTTP errors are returned, never retried."""
        attempts = int(settings.SDNEXT_RETRIES)
        for attempt in range(1, attempts + 1):
            try:
                return self._post_txt2img(payload)
            except Unreachable as exc:
                if attempt == attempts:
                    raise Unreachable(exc.reason, attempts) from exc
                logger.info("SDNext %s: %s (attempt %d of %d)", self.url, exc.reason, attempt, attempts)
                time.sleep(RETRY_BASE_DELAY * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _post_txt2img(self, payload: dict[str, Any]) -> Reply:
        timeout = (float(settings.SDNEXT_CONNECT_TIMEOUT), float(self.read_timeout))
        try:
            response = self.session.post(self.url + TXT2IMG_PATH, json=payload, timeout=timeout, allow_redirects=False)
        except requests.RequestException as exc:
            if _is_read_timeout(exc):
                raise ReadTimedOut() from exc
            if isinstance(exc, requests.ConnectionError):
                raise Unreachable(failure_reason(exc), 1) from exc
            raise BrokenResponse(str(exc)) from exc
        with response:
            return Reply(status=response.status_code, body=response.content)

    def progress(self) -> dict[str, Any] | None:
        """``GET /sdapi/v1/progress?skip_current_image=true``; any failure is None (the caller keeps its value)."""
        try:
            response = self.session.get(
                self.url + PROGRESS_PATH,
                params={"skip_current_image": "true"},
                timeout=POLL_TIMEOUT,
                allow_redirects=False,
            )
            with response:
                body = response.json() if response.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None
        return body if isinstance(body, dict) else None

    def interrupt(self, *, timeout: tuple[float, float] = INTERRUPT_TIMEOUT) -> bool:
        """``POST /sdapi/v1/interrupt``: True on any 2xx; errors are ignored (False)."""
        try:
            response = self.session.post(self.url + INTERRUPT_PATH, timeout=timeout, allow_redirects=False)
        except requests.RequestException:
            return False
        with response:
            return 200 <= response.status_code < 300

    def interrupt_after_timeout(self) -> None:
        """After a read timeout: 3 interrupts 0.5 s apart (a single one can be lost between phases)."""
        for number in range(TIMEOUT_INTERRUPTS):
            if number:
                time.sleep(INTERRUPT_SPACING)
            self.interrupt()
