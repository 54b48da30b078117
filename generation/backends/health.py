"""The SDNext health probe (SPEC 6.3.7): ``GET <url>/sdapi/v1/version``, healthy iff 200 with a JSON object.

Only HTTP happens here, so probes can run in threads; the rows and the cache are written by
``generation.backends.services``. Passwords are sent as HTTP Basic credentials and never logged.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.auth import HTTPBasicAuth

from loraforge import __version__

VERSION_PATH = "/sdapi/v1/version"
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 3.0
VERSION_KEYS = ("app", "commit", "branch", "updated")
VERSION_VALUE_MAX = 200
USER_AGENT = f"LoRAForge/{__version__}"


@dataclass(frozen=True)
class HealthResult:
    healthy: bool
    error: str | None = None
    version_info: dict[str, Any] | None = field(default=None)


def basic_auth(username: str | None, password: str | None) -> HTTPBasicAuth | None:
    """HTTP Basic credentials as UTF-8 (RFC 7617); requests would encode str as Latin-1 and fail on the rest."""
    return HTTPBasicAuth(username.encode("utf-8"), (password or "").encode("utf-8")) if username else None


def probe(url: str, *, username: str | None = None, password: str | None = None) -> HealthResult:
    """One live check of the server at ``url`` (a normalised backend URL, no trailing slash)."""
    auth = basic_auth(username, password)
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    try:
        response = requests.get(
            url + VERSION_PATH,
            auth=auth,
            headers=headers,
            timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            allow_redirects=False,
        )
    except requests.Timeout:
        return HealthResult(healthy=False, error="timeout")
    except requests.exceptions.SSLError:
        return HealthResult(healthy=False, error="TLS error")
    except requests.ConnectionError as exc:
        return HealthResult(healthy=False, error=connection_reason(exc))
    except requests.RequestException:
        return HealthResult(healthy=False, error="request failed")
    with response:
        return _result_of(response)


def _result_of(response: requests.Response) -> HealthResult:
    if response.status_code != 200:
        return HealthResult(healthy=False, error=f"HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        return HealthResult(healthy=False, error="invalid response")
    if not isinstance(body, dict):
        return HealthResult(healthy=False, error="invalid response")
    return HealthResult(healthy=True, version_info=version_info(body))


def version_info(body: dict[str, Any]) -> dict[str, Any]:
    """The kept keys of SDNext's version object; long strings are cut, nested values dropped."""
    kept: dict[str, Any] = {}
    for key in VERSION_KEYS:
        value = body.get(key)
        if isinstance(value, str):
            kept[key] = value[:VERSION_VALUE_MAX]
        elif isinstance(value, int | float | bool):
            kept[key] = value
    return kept


def connection_reason(exc: BaseException) -> str:
    """A short reason for a failed connection, from the innermost cause requests/urllib3 wrapped."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or getattr(current, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        if type(current).__name__ == "NameResolutionError" or "Name or service not known" in str(current):
            return "host not found"
        pending.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        pending.extend(
            link
            for link in (current.__cause__, current.__context__, getattr(current, "reason", None))
            if isinstance(link, BaseException)
        )
    if "refused" in str(exc).lower():
        return "connection refused"
    return "connection failed"
