"""The HTTP delivery host allow-list (``LORAFORGE_DELIVERY_ALLOWED_HOSTS``, SPEC 2 and 6.4).

Entries are ``host``, ``host:port`` or ``*.example.com`` (sub-domains only, optionally with ``:port``); IPv6
literals are written in brackets (``[::1]:8080``). Host names compare case-insensitively; no DNS is involved.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_HOST_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*\.?$")
_IPV6 = re.compile(r"^\[?([0-9a-f:.]+)\]?$")


def normalize_host(host: str) -> str:
    """Lower-case, without a trailing dot or IPv6 brackets."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def is_valid_host(host: str) -> bool:
    """A DNS name, an IPv4 address or an IPv6 literal; nothing that could smuggle a port, path or user."""
    lowered = host.strip().lower()
    if _HOST_NAME.match(lowered):
        return True
    match = _IPV6.match(lowered)
    return match is not None and ":" in match.group(1)


def _split_entry(entry: str) -> tuple[str, int | None]:
    """``(host, port)`` of an entry; an unreadable port yields an empty host, which matches nothing."""
    entry = entry.strip()
    if entry.startswith("["):
        literal, _, rest = entry[1:].partition("]")
        name, port = literal, rest.removeprefix(":")
    elif entry.count(":") == 1:
        name, _, port = entry.partition(":")
    else:
        name, port = entry, ""
    if port and not port.isdigit():
        return "", None
    return normalize_host(name), int(port) if port else None


def _entry_matches(entry: str, host: str, port: int) -> bool:
    pattern, pattern_port = _split_entry(entry)
    if not pattern or (pattern_port is not None and pattern_port != port):
        return False
    if pattern.startswith("*."):
        suffix = pattern[1:]
        return host.endswith(suffix) and len(host) > len(suffix)
    return host == pattern


def host_allowed(host: str, port: int, allowed: Iterable[str]) -> bool:
    """Whether ``host:port`` matches an allow-list entry (an entry without a port allows every port)."""
    target = normalize_host(host)
    return bool(target) and any(_entry_matches(entry, target, port) for entry in allowed if entry.strip())
