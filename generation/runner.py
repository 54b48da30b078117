"""The ``sdnext`` delivery runner (SPEC 6.2.3, 6.2.5, 6.3): lease a backend, run txt2img while a poller
reports progress, store the images, and commit the terminal write, result rows and usage counters together.

Only whoever performs the terminal write publishes ``generation_complete``; whatever SDNext returns for a job
cancelled meanwhile is discarded. The lease is always released.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from adapters.models import Adapter
from deliveries import events
from deliveries.execution import delivery_fail
from deliveries.models import DeliveryJob
from deliveries.services import delivery_job_enqueue
from generation.backends.leases import (
    backend_candidates,
    lease_acquire,
    lease_available,
    lease_release,
    lease_seconds,
    leases_clear,
)
from generation.backends.services import backend_health_record
from generation.models import GenerationBackend, GenerationResult
from generation.results.files import StorageError, files_delete, images_write
from generation.sdnext import outcomes
from generation.sdnext.client import BrokenResponse, ReadTimedOut, Reply, SDNextClient, Unreachable, read_timeout
from generation.sdnext.outcomes import Failure
from generation.sdnext.payload import generation_params, job_payload
from generation.sdnext.progress import ProgressPoller
from generation.sdnext.response import ParsedResponse, parse_txt2img
from loraforge.jobs.deadline import deadline_check
from loraforge.media import media_url
from loraforge.models.jobs import JobStatus

logger = logging.getLogger("loraforge.generation")

NO_BACKEND = "No enabled generation backend"
WAITING = "Waiting for a free backend"
WAIT_COUNTDOWN = 2.0  # seconds a job waits for a free backend in its worker thread before re-scheduling
WAIT_POLL = 0.1
RECOVERY_INTERRUPT_TIMEOUT = (2.0, 3.0)
TASK_TIME_MARGIN = 120


def queue_timeout_error(seconds: int) -> str:
    return f"No generation backend became free within {seconds} s"


def job_result(
    *,
    backend: str | None,
    images: list[str] | None = None,
    parsed: ParsedResponse | None = None,
    failure: Failure | None = None,
) -> dict[str, Any]:
    """The ``result`` of a generation job (SPEC 3.3); ``error_message`` equals the job's ``error``."""
    return {
        "status": "failed" if failure else "completed",
        "images": images or [],
        "generation_info": parsed.generation_info if parsed else None,
        "warnings": list(parsed.warnings) if parsed else [],
        "error_message": failure.error if failure else None,
        "error_code": failure.code if failure else None,
        "backend": backend,
    }


def _fail(job: DeliveryJob, backend: str | None, failure: Failure, parsed: ParsedResponse | None = None) -> None:
    result = job_result(backend=backend, parsed=parsed, failure=failure)
    if not delivery_fail(job, error=failure.error, error_code=failure.code, result=result):
        logger.info("Job %s was no longer active; its outcome (%s) is discarded", job.pk, failure.code)


# --- step 1-2: backend and lease --------------------------------------------------------------


def _announce_waiting(job: DeliveryJob) -> bool:
    """Keep the job ``pending`` with "Waiting for a free backend" (its ``progress_update`` only when the message
    changes); False when it is no longer pending (started by a duplicate task, or cancelled)."""
    changed = job.message != WAITING
    with transaction.atomic():  # a concurrent cancel's events come after this one (it waits for the row)
        if not job.wait_message(WAITING):
            return False
        if changed:
            events.publish_progress(job)
    return True


def _await_lease(job: DeliveryJob, candidates: list[GenerationBackend]) -> GenerationBackend | None:
    """No candidate is free: fail after ``LORAFORGE_QUEUE_WAIT_TIMEOUT``; else wait up to 2 s in this thread for
    a lease (a cheap read every 0.1 s, so a freed backend is taken over at once), then re-schedule the task."""
    limit = int(settings.LORAFORGE_QUEUE_WAIT_TIMEOUT)
    if (timezone.now() - job.created_at).total_seconds() >= limit:
        _fail(job, None, Failure("queue_timeout", queue_timeout_error(limit)))
        return None
    if not _announce_waiting(job):
        return None
    deadline = time.monotonic() + WAIT_COUNTDOWN
    while time.monotonic() < deadline:
        time.sleep(WAIT_POLL)
        deadline_check()
        if lease_available(candidates):
            backend = lease_acquire(job_id=job.pk, candidates=candidates)
            if backend is not None:
                return backend
    if DeliveryJob.objects.filter(pk=job.pk, status=JobStatus.PENDING).exists():
        delivery_job_enqueue(job)
    return None


def _claim(job: DeliveryJob) -> GenerationBackend | None:
    candidates = backend_candidates(job.requested_backend)
    if not candidates:
        _fail(job, None, Failure("no_backend", NO_BACKEND))
        return None
    backend = lease_acquire(job_id=job.pk, candidates=candidates)
    return backend if backend is not None else _await_lease(job, candidates)


def _start(job: DeliveryJob, *, worker: str, backend: GenerationBackend) -> bool:
    """``pending`` → ``running`` and its ``progress_update``, in one transaction (see ``_announce_waiting``)."""
    with transaction.atomic():
        if not job.start(worker=worker, backend=backend):
            return False
        events.publish_progress(job)
    return True


# --- step 4-5: txt2img and its outcome ----------------------------------------------------------


def _call_sdnext(job: DeliveryJob, backend: GenerationBackend) -> Reply | Failure:
    payload = job_payload(job)
    poller_client = SDNextClient.for_backend(backend)
    with SDNextClient.for_backend(backend) as client:
        try:
            with ProgressPoller(
                job=job, backend_id=backend.pk, client=poller_client, lease_seconds=lease_seconds(backend)
            ):
                reply = client.txt2img(payload)
        except Unreachable as exc:
            return outcomes.unreachable(backend.name, exc.reason, exc.attempts)
        except ReadTimedOut:
            client.interrupt_after_timeout()
            return outcomes.timed_out(backend.name, int(client.read_timeout))
        except BrokenResponse:
            return outcomes.invalid_response()
    return outcomes.http_failure(backend.name, reply.status, reply.body) or reply


def _record_health(backend: GenerationBackend, *, failure: Failure | None) -> None:
    """Job outcomes update health (SPEC 6.3.7): unreachable/credentials → unhealthy, success → healthy."""
    if failure is not None:
        if failure.unhealthy:
            backend_health_record(backend=backend, healthy=False, error=failure.unhealthy)
        return
    current = GenerationBackend.objects.filter(pk=backend.pk).values_list("version_info", flat=True).first()
    backend_health_record(backend=backend, healthy=True, version_info=current)


def _commit(job: DeliveryJob, parsed: ParsedResponse, paths: list[str], result: dict[str, Any]) -> bool:
    """The terminal write, the result rows and the usage counters in one transaction; False when the job was
    no longer running (cancelled meanwhile)."""
    with transaction.atomic():
        if not job.succeed(result=result):
            return False
        GenerationResult.objects.bulk_create(
            GenerationResult(
                job=job,
                index=item.index,
                file=path,
                content_type=item.image.content_type,
                size_bytes=item.image.size_bytes,
                width=item.image.width,
                height=item.image.height,
                seed=item.seed,
                infotext=item.infotext,
            )
            for item, path in zip(parsed.images, paths, strict=True)
        )
        adapter_ids = set(job.adapter_links.exclude(adapter=None).values_list("adapter_id", flat=True))
        Adapter.objects.filter(pk__in=adapter_ids).update(
            usage_count=F("usage_count") + 1, last_used_at=job.finished_at
        )
    return True


def _succeed(job: DeliveryJob, backend: GenerationBackend, parsed: ParsedResponse) -> None:
    items = [(item.index, item.image.extension, item.image.data) for item in parsed.images]
    try:
        paths = images_write(job_id=job.pk, created_at=job.created_at, images=items)
    except StorageError as exc:
        _fail(job, backend.name, outcomes.storage_error(exc.reason), parsed)
        return
    result = job_result(backend=backend.name, images=[media_url(path) for path in paths], parsed=parsed)
    try:
        committed = _commit(job, parsed, paths, result)
    except BaseException:
        files_delete(paths)
        raise
    if not committed:
        files_delete(paths)
        logger.info("Job %s was cancelled while SDNext generated; its images are discarded", job.pk)
        return
    events.publish_terminal(job)
    _record_health(backend, failure=None)


def _generate(job: DeliveryJob, backend: GenerationBackend) -> None:
    outcome = _call_sdnext(job, backend)
    if isinstance(outcome, Failure):
        _record_health(backend, failure=outcome)
    deadline_check()  # the task's time limit, where the pool enforces none (loraforge.jobs.deadline)
    job.refresh_from_db()
    if job.status != JobStatus.RUNNING:
        logger.info("Job %s is %s; the SDNext answer is discarded", job.pk, job.status)
        return
    if isinstance(outcome, Failure):
        _fail(job, backend.name, outcome)
        return
    links = [(link.sdnext_name, link.weight) for link in job.adapter_links.order_by("position")]
    seed = generation_params(job).get("seed")
    parsed = parse_txt2img(outcome.body, requested_seed=seed if isinstance(seed, int) else None, loras=links)
    if parsed.failure is not None:
        _fail(job, backend.name, parsed.failure, parsed)
        return
    _succeed(job, backend, parsed)


class SDNextRunner:
    """Runs ``sdnext`` jobs on the ``generation`` queue (registered by ``GenerationConfig.ready``)."""

    mode = "sdnext"
    queue = "generation"

    def run(self, job: DeliveryJob, *, worker: str) -> None:
        backend = _claim(job)
        if backend is None:
            return
        try:
            if not _start(job, worker=worker, backend=backend):
                return  # cancelled (or started by a duplicate task) meanwhile
            _generate(job, backend)
        finally:
            lease_release(backend_id=backend.pk, job_id=job.pk)

    def time_limit(self, job: DeliveryJob) -> int:
        """SPEC 6.2.5: the longest read timeout among the backends the job may use, + 120 s."""
        timeouts = [read_timeout(backend) for backend in backend_candidates(job.requested_backend)]
        return max(timeouts, default=int(settings.SDNEXT_TIMEOUT)) + TASK_TIME_MARGIN

    def release(self, job: DeliveryJob) -> None:
        """Recovery of an orphaned job: free the backends it holds and interrupt each once (best effort)."""
        for backend in leases_clear(job_id=job.pk):
            with SDNextClient.for_backend(backend) as client:
                if not client.interrupt(timeout=RECOVERY_INTERRUPT_TIMEOUT):
                    logger.info("Could not interrupt backend '%s' for orphaned job %s", backend.name, job.pk)
