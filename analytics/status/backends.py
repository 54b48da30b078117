"""Generation backends in the status (SPEC 6.9, 6.3.7): cached health; the stale entries of enabled backends are
re-checked in parallel probe threads (HTTP only) and recorded here, in the request's thread, when they answer in
time. A probe still running at the deadline is recorded as unhealthy with ``"timeout"`` (it did not answer within
the status budget), so the next status answers from the cache."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from analytics.status.probes import Probe, short_reason
from generation.backends import health
from generation.backends.services import HEALTH_CACHE_KEY, backend_health_record
from generation.models import GenerationBackend

logger = logging.getLogger("loraforge.analytics")

TIMED_OUT = health.HealthResult(healthy=False, error="timeout")
PROBE_PREFIX = "backend:"


def backend_rows() -> list[GenerationBackend]:
    return list(GenerationBackend.objects.order_by("name", "id"))


def cached_health(backend: GenerationBackend) -> dict[str, Any] | None:
    """The shared-cache entry ``generation.backends.services`` writes (None when expired or the cache is down)."""
    try:
        value = cache.get(HEALTH_CACHE_KEY.format(id=backend.pk))
    except Exception:  # the Redis cache is down: the rows' last results stand in
        return None
    if not isinstance(value, dict) or not {"healthy", "error", "checked_at"} <= value.keys():
        return None
    try:
        checked_at = datetime.fromisoformat(str(value["checked_at"]))
    except ValueError:
        return None
    return {"healthy": bool(value["healthy"]), "error": value["error"], "checked_at": checked_at}


def stale_probes(rows: list[GenerationBackend]) -> tuple[dict[str, dict[str, Any]], dict[str, Probe]]:
    """The cached entries by backend id, and a probe for every enabled backend without one."""
    cached: dict[str, dict[str, Any]] = {}
    probes: dict[str, Probe] = {}
    for backend in rows:
        state = cached_health(backend)
        if state is not None:
            cached[str(backend.pk)] = state
        elif backend.enabled:
            run = partial(health.probe, backend.url, username=backend.username, password=backend.password)
            probes[PROBE_PREFIX + str(backend.pk)] = Probe(run=run, fallback=TIMED_OUT)
    return cached, probes


def record_probes(rows: list[GenerationBackend], results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Write the fresh probe results (rows and cache); returns them as cached entries by backend id."""
    fresh: dict[str, dict[str, Any]] = {}
    for backend in rows:
        result = results.get(PROBE_PREFIX + str(backend.pk))
        if not isinstance(result, health.HealthResult):
            continue
        try:
            backend_health_record(
                backend=backend, healthy=result.healthy, error=result.error, version_info=result.version_info
            )
        except Exception as exc:  # the cache is down; the row may be written, the answer stands anyway
            logger.warning("Could not record the health of backend '%s': %s", backend.name, short_reason(exc))
        checked_at = backend.last_checked_at or timezone.now()
        fresh[str(backend.pk)] = {"healthy": result.healthy, "error": result.error, "checked_at": checked_at}
    return fresh


def backend_entry(backend: GenerationBackend, state: dict[str, Any] | None) -> dict[str, Any]:
    """One ``backends`` item: the cached (or just probed) health, else the row's last result."""
    return {
        "id": str(backend.pk),
        "name": backend.name,
        "url": backend.url,
        "enabled": backend.enabled,
        "healthy": state["healthy"] if state else backend.healthy,
        "busy": backend.has_live_lease(),
        "last_checked_at": state["checked_at"] if state else backend.last_checked_at,
        "last_error": state["error"] if state else backend.last_error,
        "version": backend.version_info or None,
    }


def backend_entries(rows: list[GenerationBackend], states: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [backend_entry(backend, states.get(str(backend.pk))) for backend in rows]


def cached_backend_entries(rows: list[GenerationBackend]) -> list[dict[str, Any]]:
    """Every backend from the cache or its row: no probe (the dashboard)."""
    return [backend_entry(backend, cached_health(backend)) for backend in rows]


def sdnext_block(entries: list[dict[str, Any]], rows: list[GenerationBackend]) -> dict[str, Any]:
    """The ``default`` backend, else the first enabled one (compatibility with the single-server status)."""
    default = next((row for row in rows if row.is_default), None) or next((row for row in rows if row.enabled), None)
    if default is None:
        return {"configured": False, "base_url": None, "available": False, "error": None, "checked_at": None}
    entry = next(item for item in entries if item["id"] == str(default.pk))
    return {
        "configured": True,
        "base_url": entry["url"],
        "available": entry["healthy"] is True,
        "error": entry["last_error"],
        "checked_at": entry["last_checked_at"],
    }


def backend_warnings(entries: list[dict[str, Any]]) -> list[str]:
    return [
        f"Generation backend '{entry['name']}' is unreachable: {entry['last_error'] or 'unknown error'}"
        for entry in entries
        if entry["enabled"] and entry["healthy"] is False
    ]
