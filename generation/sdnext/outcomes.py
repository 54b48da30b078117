"""SDNext outcomes mapped to job results (SPEC 6.3.6): exact error texts and codes. SDNext-provided texts are
cut to 300 characters and stripped of control characters."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

TEXT_LIMIT = 300
_LINE_BREAKS = re.compile(r"[\t\r\n]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

INVALID_RESPONSE = "SDNext returned an invalid response"
NO_IMAGES = "SDNext returned no images (the model may not be loaded, or the generation was aborted)"
NO_DECODABLE_IMAGES = "SDNext returned no decodable images"
RATE_LIMITED = "SDNext rate limit exceeded (HTTP 429)"


@dataclass(frozen=True)
class Failure:
    """A failed generation: ``error_code``, ``error`` text, and the backend's ``last_error`` when the outcome
    makes it unhealthy (unreachable, credentials rejected)."""

    code: str
    error: str
    unhealthy: str | None = None


def clean(text: object) -> str:
    """An SDNext-provided text: line breaks and tabs become spaces, other control characters are removed,
    at most 300 characters."""
    return _CONTROL.sub("", _LINE_BREAKS.sub(" ", str(text))).strip()[:TEXT_LIMIT]


def unreachable(name: str, reason: str, attempts: int) -> Failure:
    error = f"Cannot reach SDNext backend '{name}': {reason} (after {attempts} attempts)"
    return Failure("backend_unreachable", error, unhealthy=reason)


def timed_out(name: str, seconds: int) -> Failure:
    error = f"SDNext backend '{name}' did not finish within {seconds} s; generation interrupted"
    return Failure("backend_timeout", error)


def invalid_response() -> Failure:
    return Failure("backend_invalid_response", INVALID_RESPONSE)


def storage_error(reason: str) -> Failure:
    return Failure("storage_error", f"Could not store generated images: {reason}")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _envelope_text(body: Any, status: int) -> str:
    """``errors`` (without SDNext's ``"<status>: "`` prefix) or ``detail`` of an SDNext error envelope."""
    if not isinstance(body, dict) or "error" not in body:
        return ""
    errors = body.get("errors")
    if isinstance(errors, str) and errors.strip():
        return clean(errors.removeprefix(f"{status}: "))
    detail = body.get("detail")
    return clean(detail) if isinstance(detail, str) else ""


def _validation_text(body: Any) -> str:
    """The first item of FastAPI's 422 list (``loc`` joined by ``.``, ``msg``), or an envelope ``detail``."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        loc = first.get("loc")
        where = ".".join(str(part) for part in loc) if isinstance(loc, list) else ""
        message = clean(first.get("msg", ""))
        return clean(f"{where}: {message}" if where else message)
    return _envelope_text(body, 422) or (clean(detail) if isinstance(detail, str) else "")


def _not_found(body: Any) -> Failure:
    text = _envelope_text(body, 404)
    if text:
        return Failure("backend_error", f"SDNext error 404: {text}")
    return Failure("backend_error", "SDNext error 404: Not Found (is the URL an SDNext server?)")


def http_failure(name: str, status: int, body: bytes) -> Failure | None:
    """None for a 2xx; otherwise the failure of table 6.3.6."""
    if 200 <= status < 300:
        return None
    if status in (401, 403):
        error = f"SDNext backend '{name}' rejected the credentials (HTTP {status})"
        return Failure("backend_auth", error, unhealthy=f"HTTP {status}")
    if status == 404:
        return _not_found(_json(body))
    if status == 422:
        text = _validation_text(_json(body))
        suffix = f": {text}" if text else ""
        return Failure("backend_rejected", f"SDNext rejected the request (HTTP 422){suffix}")
    if status == 429:
        return Failure("backend_rate_limited", RATE_LIMITED)
    if status == 500:
        text = _envelope_text(_json(body), 500)
        return Failure("backend_error", f"SDNext error 500: {text}" if text else "SDNext error 500")
    return Failure("backend_error", f"SDNext error {status}")
