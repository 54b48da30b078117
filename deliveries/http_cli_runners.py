"""The http and cli delivery runners (SPEC 6.4): POST the prompt to an allow-listed host, or write it to a
file under the data folder. Nothing is ever executed."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from urllib3.exceptions import ReadTimeoutError

from deliveries import events
from deliveries.execution import delivery_fail, heartbeat_ticker
from deliveries.hosts import host_allowed
from deliveries.models import DeliveryJob
from deliveries.services import OTHER_TIME_LIMIT
from loraforge import __version__

logger = logging.getLogger("loraforge.deliveries")

CONNECT_TIMEOUT = 5.0
BODY_LIMIT = 1024 * 1024
DETAIL_LIMIT = 2000
CLI_SUBDIR = Path("deliveries") / "cli"


def _finish(job: DeliveryJob, *, result: dict[str, Any]) -> None:
    """The terminal write; a job cancelled meanwhile keeps ``cancelled`` and the outcome is discarded."""
    if job.succeed(result=result):
        events.publish_terminal(job)


def _start(job: DeliveryJob, worker: str) -> bool:
    if not job.start(worker=worker):
        return False
    events.publish_progress(job)
    return True


# --- http ---------------------------------------------------------------------------------------


def _url(params: dict[str, Any]) -> str:
    host = str(params["host"]).strip()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{params['scheme']}://{host}:{params['port']}{params['path']}"


def _read_limited(response: requests.Response) -> bytes:
    body = bytearray()
    for chunk in response.iter_content(chunk_size=65536):
        body.extend(chunk)
        if len(body) >= BODY_LIMIT:
            break
    return bytes(body[:BODY_LIMIT])


def _is_timeout(exc: requests.RequestException) -> bool:
    """A read timeout, also while the body streams (requests wraps urllib3's ``ReadTimeoutError`` in a
    ``ConnectionError`` there); a connect timeout is a failure to connect."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.Timeout):
        return True
    return isinstance(exc, requests.ConnectionError) and any(isinstance(arg, ReadTimeoutError) for arg in exc.args)


def _decode(body: bytes, encoding: str | None) -> str:
    """The body as text; an unknown charset in the response falls back to UTF-8."""
    try:
        return body.decode(encoding or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def _post(job: DeliveryJob, url: str, *, headers: dict[str, str], timeout: int) -> tuple[int, str, str | None]:
    """POST ``{"prompt", "job_id"}`` (redirects not followed, TLS verified) while the heartbeat is renewed;
    returns the status, the first 2000 characters of the body (at most 1 MiB is read) and the content type."""
    with (
        heartbeat_ticker(job),
        requests.post(
            url,
            json={"prompt": job.prompt, "job_id": str(job.pk)},
            headers={"User-Agent": f"LoRAForge/{__version__}", **headers},
            timeout=(CONNECT_TIMEOUT, timeout),
            allow_redirects=False,
            stream=True,
        ) as response,
    ):
        body = _read_limited(response)
    return response.status_code, _decode(body, response.encoding)[:DETAIL_LIMIT], response.headers.get("Content-Type")


class HttpRunner:
    mode = "http"
    queue = "default"

    def run(self, job: DeliveryJob, *, worker: str) -> None:
        if not _start(job, worker):
            return
        params = job.params
        host = str(params.get("host", ""))
        port = int(params.get("port") or (443 if params.get("scheme") == "https" else 80))
        if not host_allowed(host, port, settings.LORAFORGE_DELIVERY_ALLOWED_HOSTS):
            delivery_fail(job, error=f"Host '{host}' is not allowed", error_code="host_not_allowed")
            return
        timeout = int(params.get("timeout_seconds") or settings.LORAFORGE_DELIVERY_TIMEOUT)
        try:
            status, detail, content_type = _post(
                job, _url({**params, "port": port}), headers=dict(params.get("headers") or {}), timeout=timeout
            )
        except requests.RequestException as exc:
            if _is_timeout(exc):
                delivery_fail(job, error=f"HTTP delivery timed out after {timeout} s", error_code="http_timeout")
            else:
                delivery_fail(job, error=f"HTTP delivery could not connect to {host}", error_code="http_unreachable")
            return
        if not 200 <= status < 300:
            delivery_fail(job, error=f"HTTP delivery failed with status {status}", error_code="http_error")
            return
        _finish(job, result={"status": status, "detail": detail, "headers": {"content-type": content_type}})

    def release(self, job: DeliveryJob) -> None:
        """An http delivery holds nothing."""

    def time_limit(self, job: DeliveryJob) -> int:
        return OTHER_TIME_LIMIT


# --- cli ----------------------------------------------------------------------------------------


def cli_text(prompt: str, template: str | None) -> str:
    """The template with every literal ``{prompt}`` replaced (no format strings), or the prompt alone."""
    return prompt if not template else template.replace("{prompt}", prompt)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class CliRunner:
    mode = "cli"
    queue = "default"

    def run(self, job: DeliveryJob, *, worker: str) -> None:
        if not _start(job, worker):
            return
        relative = CLI_SUBDIR / f"{job.pk}.txt"
        try:
            _write_atomically(Path(settings.DATA_DIR) / relative, cli_text(job.prompt, job.params.get("template")))
        except OSError as exc:
            delivery_fail(
                job, error=f"Could not write the prompt file: {exc.strerror or exc}", error_code="cli_write_error"
            )
            return
        _finish(
            job,
            result={
                "status": "ok",
                "detail": f"Prompt written to {relative.as_posix()}",
                "file_path": relative.as_posix(),
            },
        )

    def release(self, job: DeliveryJob) -> None:
        """A cli delivery holds nothing."""

    def time_limit(self, job: DeliveryJob) -> int:
        return OTHER_TIME_LIMIT
