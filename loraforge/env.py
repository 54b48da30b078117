"""Typed readers for environment variables: the only place that reads ``os.environ``.

Every reader raises ``ImproperlyConfigured`` naming the variable when its value cannot be
parsed, so a bad configuration stops the process at start-up instead of misbehaving later.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
FALSE_VALUES = frozenset({"0", "false", "no", "off"})

Environ = Mapping[str, str]
_HOST_SCHEMES = frozenset({"http", "https", "redis", "rediss"})  # URLs that must name a host


def _environ(environ: Environ | None) -> Environ:
    return os.environ if environ is None else environ


def raw(name: str, environ: Environ | None = None, *, aliases: Sequence[str] = ()) -> str | None:
    """The trimmed value of ``name`` (or of ``NAME_FILE``'s content, or of an alias), or None."""
    env = _environ(environ)
    for key in (name, *aliases):
        value = env.get(key)
        if value is not None and value.strip() != "":
            return value.strip()
        file_name = env.get(f"{key}_FILE")
        if file_name:
            try:
                content = Path(file_name).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise ImproperlyConfigured(f"{key}_FILE: cannot read {file_name}: {reason}") from exc
            if content:  # an empty file counts as unset, like an empty variable
                return content
    return None


def string(name: str, default: str, environ: Environ | None = None, *, aliases: Sequence[str] = ()) -> str:
    value = raw(name, environ, aliases=aliases)
    return default if value is None else value


def optional_string(name: str, environ: Environ | None = None, *, aliases: Sequence[str] = ()) -> str | None:
    return raw(name, environ, aliases=aliases)


def boolean(name: str, default: bool, environ: Environ | None = None) -> bool:
    value = raw(name, environ)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in TRUE_VALUES:
        return True
    if lowered in FALSE_VALUES:
        return False
    raise ImproperlyConfigured(f"{name}: expected a boolean (1/0/true/false/yes/no/on/off), got {value!r}")


def integer(
    name: str,
    default: int,
    environ: Environ | None = None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    value = raw(name, environ)
    if value is None:
        return default
    try:
        number = int(value, 10)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected an integer, got {value!r}") from None
    _check_range(name, number, minimum, maximum)
    return number


def floating(
    name: str,
    default: float,
    environ: Environ | None = None,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    value = raw(name, environ)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ImproperlyConfigured(f"{name}: expected a finite number, got {value!r}")
    _check_range(name, number, minimum, maximum)
    return number


def _check_range(name: str, number: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}: must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}: must be at most {maximum}, got {number}")


def string_list(name: str, default: Sequence[str], environ: Environ | None = None, *, sep: str = ",") -> list[str]:
    value = raw(name, environ)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(sep) if item.strip()]


def path(name: str, default: Path, environ: Environ | None = None) -> Path:
    value = raw(name, environ)
    chosen = default if value is None else Path(value).expanduser()
    return Path(os.path.abspath(chosen))


def path_list(name: str, default: Sequence[Path], environ: Environ | None = None) -> list[Path]:
    value = raw(name, environ)
    if value is None:
        return [Path(os.path.abspath(p)) for p in default]
    items = (item.strip() for item in value.split(os.pathsep))
    return [Path(os.path.abspath(Path(item).expanduser())) for item in items if item]


def choice(name: str, default: str, choices: Sequence[str], environ: Environ | None = None) -> str:
    value = raw(name, environ)
    if value is None:
        return default
    lowered = value.lower()
    if lowered not in choices:
        raise ImproperlyConfigured(f"{name}: must be one of {', '.join(choices)}, got {value!r}")
    return lowered


def json_object(name: str, environ: Environ | None = None) -> dict[str, Any] | None:
    value = raw(name, environ)
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected a JSON object, got invalid JSON") from None
    if not isinstance(parsed, dict):
        raise ImproperlyConfigured(f"{name}: expected a JSON object")
    return parsed


def url(
    name: str, environ: Environ | None = None, *, schemes: Sequence[str], aliases: Sequence[str] = ()
) -> str | None:
    value = raw(name, environ, aliases=aliases)
    if value is None:
        return None
    # The value is never echoed: URLs carry passwords, and errors end up in logs.
    expected = f"{name}: expected a URL with scheme {'/'.join(schemes)}"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (validates the port)
    except ValueError:
        raise ImproperlyConfigured(f"{expected}; the value is not a valid URL") from None
    if parts.scheme not in schemes:
        raise ImproperlyConfigured(f"{expected}, got scheme {parts.scheme!r}")
    target = parts.hostname if parts.scheme in _HOST_SCHEMES else parts.netloc or parts.path
    if not target:
        raise ImproperlyConfigured(f"{expected}; the URL names no host or path")
    return value


def database(name: str, default_sqlite: Path, environ: Environ | None = None) -> dict[str, Any]:
    """A Django ``DATABASES['default']`` dict from ``DATABASE_URL`` (PostgreSQL or SQLite)."""
    value = url(name, environ, schemes=("postgres", "postgresql", "sqlite"))
    cache_kib = integer("LORAFORGE_SQLITE_CACHE_KIB", SQLITE_CACHE_KIB, environ, minimum=64, maximum=1_048_576)
    if value is None:
        return sqlite_database(default_sqlite, cache_kib=cache_kib)
    parts = urlsplit(value)
    if parts.scheme == "sqlite":
        if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
            raise ImproperlyConfigured(f"{name}: sqlite URLs need an absolute path (sqlite:///abs/path)")
        return sqlite_database(Path(unquote(parts.path)), cache_kib=cache_kib)
    db_name = unquote(parts.path.lstrip("/"))
    if not db_name:
        raise ImproperlyConfigured(f"{name}: the PostgreSQL URL names no database")
    port = parts.port
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": db_name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(port or ""),
        # Under ASGI every request runs in a thread of its own, so persistent per-thread connections
        # (CONN_MAX_AGE) pile up until PostgreSQL refuses clients; a psycopg pool reuses them instead.
        "CONN_MAX_AGE": 0,
        "OPTIONS": {"pool": {"min_size": 2, "max_size": 16, "timeout": 10}},
        "TEST": {"NAME": f"test_{db_name}"},
    }


# SQLite's page cache per connection. Small on purpose: in WAL mode a connection empties its cache whenever another
# connection wrote since its last read, so under writes a large cache is refilled over and over. Measured on the
# peer workload (embeddings on, 10,000 creates): 256 KiB against SQLite's default 2,000 KiB gave more throughput in
# every phase and a flatter RSS (docs/PERFORMANCE.md, sixth pass).
SQLITE_CACHE_KIB = 256


def sqlite_database(file_path: Path, *, cache_kib: int = SQLITE_CACHE_KIB) -> dict[str, Any]:
    return {
        # Django's SQLite backend, with the writers of a process queued in the process (loraforge/sqlite).
        "ENGINE": "loraforge.sqlite",
        "NAME": str(file_path),
        # Kept by the long-lived HTTP and worker threads: opening one (and its PRAGMAs) per request cost ~1 ms.
        "CONN_MAX_AGE": 600,
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 5,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
                f"PRAGMA cache_size=-{cache_kib};"
            ),
        },
        # A file, not memory: tests start servers and workers that share the test database.
        "TEST": {"NAME": str(file_path.with_name(f"test_{file_path.name}"))},
    }
