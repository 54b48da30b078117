"""Backend choice and leases (SPEC 6.2.3 steps 1-2, 6.2.6): one job per SDNext server at a time, in every
deployment shape. Acquiring is ONE conditional UPDATE, so concurrent workers (threads or processes) cannot
both win the same backend; renewing and releasing only touch a lease the job holds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from generation.models import GenerationBackend
from generation.sdnext.client import read_timeout

ANY_BACKEND = "sdnext"
LEASE_MARGIN_SECONDS = 120
_NEVER = datetime.min.replace(tzinfo=UTC)


def lease_seconds(backend: GenerationBackend) -> int:
    """A lease lasts the txt2img read timeout + 120 s (renewed by the job's heartbeats)."""
    return read_timeout(backend) + LEASE_MARGIN_SECONDS


def _preference(backend: GenerationBackend) -> tuple[bool, datetime, str]:
    """Healthy or unknown first, then least recently used (never used first)."""
    return backend.healthy is False, backend.last_used_at or _NEVER, backend.name


def backend_candidates(requested_backend: str) -> list[GenerationBackend]:
    """The pinned backend (a name) or every enabled one, in the order they are tried; [] = no backend."""
    backends = GenerationBackend.objects.filter(enabled=True)
    if requested_backend != ANY_BACKEND:
        backends = backends.filter(name=requested_backend)
    return sorted(backends, key=_preference)


def _free(now: datetime) -> Q:
    return Q(lease_job__isnull=True) | Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)


def lease_acquire(*, job_id: uuid.UUID, candidates: list[GenerationBackend]) -> GenerationBackend | None:
    """The first candidate that is still enabled and free, now leased to ``job_id`` (``last_used_at`` = now)."""
    for backend in candidates:
        now = timezone.now()
        expires = now + timedelta(seconds=lease_seconds(backend))
        won = GenerationBackend.objects.filter(_free(now), pk=backend.pk, enabled=True).update(
            lease_job=job_id, lease_expires_at=expires, last_used_at=now
        )
        if won:
            backend.lease_job, backend.lease_expires_at, backend.last_used_at = job_id, expires, now
            return backend
    return None


def lease_available(candidates: list[GenerationBackend]) -> bool:
    """Whether one of the candidates looks free (a read; ``lease_acquire`` decides)."""
    now = timezone.now()
    return GenerationBackend.objects.filter(_free(now), pk__in=[b.pk for b in candidates], enabled=True).exists()


def lease_renew(*, backend_id: uuid.UUID, job_id: uuid.UUID, seconds: int) -> bool:
    expires = timezone.now() + timedelta(seconds=seconds)
    return bool(GenerationBackend.objects.filter(pk=backend_id, lease_job=job_id).update(lease_expires_at=expires))


def lease_release(*, backend_id: uuid.UUID, job_id: uuid.UUID) -> bool:
    """Free the backend if (and only if) ``job_id`` still holds it."""
    freed = GenerationBackend.objects.filter(pk=backend_id, lease_job=job_id).update(
        lease_job=None, lease_expires_at=None
    )
    return bool(freed)


def leases_clear(*, job_id: uuid.UUID) -> list[GenerationBackend]:
    """Recovery: free every backend ``job_id`` holds; returns those actually freed."""
    freed: list[GenerationBackend] = []
    for backend in GenerationBackend.objects.filter(lease_job=job_id):
        if lease_release(backend_id=backend.pk, job_id=job_id):
            freed.append(backend)
    return freed
