"""Writes of generation backends: CRUD, health checks and the ``default`` backend (SPEC 5.5.1, 6.3.7)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from generation.backends import health
from generation.models import (
    DEFAULT_BACKEND_NAME,
    LAST_ERROR_MAX,
    NAME_TAKEN,
    GenerationBackend,
    normalize_backend_url,
)
from loraforge.errors import Conflict

logger = logging.getLogger("loraforge.generation")

BACKEND_BUSY = "Backend is running a job"
HEALTH_CACHE_KEY = "loraforge:generation:backend-health:{id}"
HEALTH_WORKERS = 8
# Changing one of these makes the last health result meaningless.
CONNECTION_FIELDS = frozenset({"url", "username", "password"})
WRITABLE_FIELDS = frozenset({"name", "url", "username", "password", "enabled", "timeout_seconds"})


# --- CRUD ------------------------------------------------------------------------------------


def _save(backend: GenerationBackend) -> GenerationBackend:
    try:
        with transaction.atomic():
            backend.save()
    except IntegrityError as exc:
        if GenerationBackend.objects.filter(name=backend.name).exclude(pk=backend.pk).exists():
            raise ValidationError({"name": [NAME_TAKEN]}) from exc
        raise
    return backend


def backend_create(*, fields: Mapping[str, Any]) -> GenerationBackend:
    """Create a backend from validated fields (``generation.backends.serializers``); its health is unknown until
    checked."""
    unknown = set(fields) - WRITABLE_FIELDS - {"kind"}
    if unknown:
        raise ValueError(f"not writable: {sorted(unknown)}")
    backend = _save(GenerationBackend(**fields))
    logger.info("Generation backend '%s' created (%s)", backend.name, backend.url)
    return backend


def backend_update(*, backend: GenerationBackend, changes: Mapping[str, Any]) -> GenerationBackend:
    """Apply validated changes; ``password: None`` clears it. A new URL or credentials reset the health."""
    unknown = set(changes) - WRITABLE_FIELDS
    if unknown:
        raise ValueError(f"not writable: {sorted(unknown)}")
    changed = {name for name, value in changes.items() if getattr(backend, name) != value}
    for name in changed:
        setattr(backend, name, changes[name])
    if changed & CONNECTION_FIELDS:
        _forget_health(backend)
    if changed:
        _save(backend)
        logger.info("Generation backend '%s' updated (%s)", backend.name, ", ".join(sorted(changed)))
    return backend


def backend_delete(*, backend: GenerationBackend) -> None:
    """Delete a backend unless a job holds a live lease on it (409); jobs keep their ``backend_name``."""
    with transaction.atomic():
        locked = GenerationBackend.objects.select_for_update().filter(pk=backend.pk).first()
        if locked is None:
            return
        if locked.has_live_lease():
            raise Conflict(BACKEND_BUSY)
        locked.delete()
    cache.delete(HEALTH_CACHE_KEY.format(id=backend.pk))
    logger.info("Generation backend '%s' deleted", backend.name)


# --- default backend ---------------------------------------------------------------------------


def backend_sync_default() -> GenerationBackend | None:
    """SPEC 6.3.7: with ``SDNEXT_URL`` set, create or update the backend named ``default`` from the settings.

    Unset leaves an existing row alone. A missing table (migrations not applied yet) is logged, not raised.
    ``enabled`` and ``timeout_seconds`` of an existing row are left as the operator set them.
    """
    if not settings.SDNEXT_URL:
        return None
    try:
        url = normalize_backend_url(settings.SDNEXT_URL)
    except ValueError:
        logger.error("SDNEXT_URL is not a usable backend URL; the default backend was not updated")
        return None
    connection = {
        "url": url,
        "username": settings.SDNEXT_USERNAME or None,
        "password": settings.SDNEXT_PASSWORD or None,
    }
    try:
        with transaction.atomic():
            backend, created = GenerationBackend.objects.select_for_update().get_or_create(
                name=DEFAULT_BACKEND_NAME, defaults={**connection, "is_default": True}
            )
            if not created:
                backend_update(backend=backend, changes=connection)
                if not backend.is_default:
                    backend.is_default = True
                    backend.save(update_fields=["is_default", "updated_at"])
    except DatabaseError:
        logger.warning("Could not sync the default generation backend (are migrations applied?)", exc_info=True)
        return None
    logger.info("Default generation backend %s from SDNEXT_URL (%s)", "created" if created else "synced", url)
    return backend


def backend_sync_default_on_start(sender: object = None, **kwargs: object) -> None:
    """Receiver of ``loraforge.signals.process_started`` (web and worker processes)."""
    backend_sync_default()


# --- health ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CachedHealth:
    healthy: bool
    error: str | None
    version_info: dict[str, Any] | None
    checked_at: datetime


def _forget_health(backend: GenerationBackend) -> None:
    backend.healthy = None
    backend.last_checked_at = None
    backend.last_error = None
    backend.version_info = None
    cache.delete(HEALTH_CACHE_KEY.format(id=backend.pk))


def _cached(backend: GenerationBackend) -> CachedHealth | None:
    value = cache.get(HEALTH_CACHE_KEY.format(id=backend.pk))
    if not isinstance(value, dict):
        return None
    try:
        return CachedHealth(
            healthy=bool(value["healthy"]),
            error=value["error"],
            version_info=value["version_info"],
            checked_at=datetime.fromisoformat(value["checked_at"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _apply(backend: GenerationBackend, state: CachedHealth) -> None:
    backend.healthy = state.healthy
    backend.last_error = state.error
    backend.version_info = state.version_info
    backend.last_checked_at = state.checked_at


def backend_health_record(
    *, backend: GenerationBackend, healthy: bool, error: str | None = None, version_info: dict[str, Any] | None = None
) -> GenerationBackend:
    """Store one health result on the row and in the shared cache (probes, and job outcomes per 6.3.7)."""
    state = CachedHealth(
        healthy=healthy,
        error=(error or None) and error[:LAST_ERROR_MAX],
        version_info=version_info if healthy else backend.version_info,
        checked_at=timezone.now(),
    )
    _apply(backend, state)
    GenerationBackend.objects.filter(pk=backend.pk).update(
        healthy=state.healthy,
        last_error=state.error,
        version_info=state.version_info,
        last_checked_at=state.checked_at,
    )
    payload = {
        "healthy": state.healthy,
        "error": state.error,
        "version_info": state.version_info,
        "checked_at": state.checked_at.isoformat(),
    }
    cache.set(HEALTH_CACHE_KEY.format(id=backend.pk), payload, timeout=settings.LORAFORGE_BACKEND_HEALTH_TTL)
    if not healthy:
        logger.warning("Generation backend '%s' is unhealthy: %s", backend.name, state.error)
    return backend


def backends_check(*, backends: Iterable[GenerationBackend], live: bool = False) -> list[GenerationBackend]:
    """Health of several backends: cached results within ``LORAFORGE_BACKEND_HEALTH_TTL`` unless ``live``;
    the others are probed in parallel (threads only do HTTP; rows and cache are written here)."""
    backends = list(backends)
    stale: list[GenerationBackend] = []
    for backend in backends:
        state = None if live else _cached(backend)
        if state is None:
            stale.append(backend)
        else:
            _apply(backend, state)
    if stale:
        with ThreadPoolExecutor(max_workers=min(HEALTH_WORKERS, len(stale))) as pool:
            results = list(pool.map(_probe, stale))
        for backend, result in zip(stale, results, strict=True):
            backend_health_record(
                backend=backend, healthy=result.healthy, error=result.error, version_info=result.version_info
            )
    return backends


def backend_check(*, backend: GenerationBackend, live: bool = True) -> GenerationBackend:
    """One backend's health; ``POST /generation/backends/{id}/check`` always probes (bypasses the cache)."""
    return backends_check(backends=[backend], live=live)[0]


def _probe(backend: GenerationBackend) -> health.HealthResult:
    return health.probe(backend.url, username=backend.username, password=backend.password)
