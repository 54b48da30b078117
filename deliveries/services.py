"""Delivery jobs: creation with their adapter links, enqueueing on commit, cancellation (SPEC 5.3, 5.4, 6.2).

Views of both the deliveries and the generation app create jobs here; ``deliveries.execution`` runs them in
the worker and ``deliveries.recovery`` sweeps orphans.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from adapters.composition import composition_order_key
from adapters.models import Adapter
from deliveries import events
from deliveries.models import PROMPT_MAX_LENGTH, DeliveryJob, DeliveryJobAdapter, DeliveryKind, DeliveryMode
from deliveries.runner_registry import generation_targets, runner_for
from deliveries.selectors import estimated_duration
from loraforge.errors import ServiceUnavailable
from loraforge.jobs.cancel import job_cancel_with
from loraforge.jobs.enqueue import QUEUE_UNAVAILABLE, QueueUnavailable, task_send
from loraforge.models.jobs import JobStatus

logger = logging.getLogger("loraforge.deliveries")

RUN_TASK = "deliveries.run_delivery"
NO_BACKEND = "No enabled generation backend is configured"
COMPOSED_PROMPT_TOO_LONG = f"Composed prompt is longer than {PROMPT_MAX_LENGTH} characters"
OTHER_TIME_LIMIT = 3600  # SPEC 6.2.5: http/cli deliveries
_LORA_TAG = re.compile(r"<lora:([^:>]+)(?::([^>]*))?>")


@dataclass(frozen=True)
class AdapterLink:
    adapter_id: uuid.UUID | None
    adapter_name: str
    sdnext_name: str
    weight: float


# --- adapter links (SPEC 6.2.7) --------------------------------------------------------------------


def _first_number(arguments: str | None) -> float:
    for part in (arguments or "").split(":"):
        try:
            value = float(part.strip())
        except ValueError:
            continue
        if value == value and abs(value) != float("inf"):
            return value
    return 1.0


def links_from_prompt(prompt: str) -> list[AdapterLink]:
    """``<lora:NAME>`` / ``<lora:NAME:ARGS>`` tags matched exactly against ``sdnext_name`` (several adapters with
    that name: the first in composition order); weight = first numeric argument, else 1.0; unmatched: no link."""
    tags = [(match.group(1), _first_number(match.group(2))) for match in _LORA_TAG.finditer(prompt)]
    if not tags:
        return []
    names = {name for name, _ in tags}
    candidates: dict[str, Adapter] = {}
    for adapter in sorted(Adapter.objects.filter(sdnext_name__in=names), key=composition_order_key):
        candidates.setdefault(adapter.sdnext_name, adapter)
    links: list[AdapterLink] = []
    for name, weight in tags:
        found = candidates.get(name)
        if found is not None:
            links.append(AdapterLink(found.pk, found.name, found.sdnext_name, weight))
    return links


def links_from_composition(adapters: Iterable[dict[str, Any]]) -> list[AdapterLink]:
    """The composed adapters (``Composition.adapters``) with their printed weights, in token order."""
    return [AdapterLink(item["id"], item["name"], item["sdnext_name"], float(item["weight"])) for item in adapters]


# --- creation and enqueueing (SPEC 6.2.2) --------------------------------------------------------------


def delivery_job_create(
    *,
    mode: str,
    prompt: str,
    params: dict[str, Any],
    created_via: str,
    requested_backend: str = "sdnext",
    links: Sequence[AdapterLink] | None = None,
    backend_field: str = "backend",
) -> DeliveryJob:
    """Create a ``pending`` job with its adapter links (from ``links``, else parsed from the prompt) and queue
    ``deliveries.run_delivery`` once the transaction commits.

    A generation's backend is checked first: 400 on ``backend_field`` for an unknown or disabled one, 503 when no
    backend is enabled (no job is created). Raises ``QueueUnavailable`` (503 with ``job_id``) when the broker
    refuses; the job is then ``failed`` with ``queue_unavailable``."""
    kind = DeliveryKind.GENERATION if mode == DeliveryMode.SDNEXT else DeliveryKind.DELIVERY
    if kind == DeliveryKind.GENERATION:
        _check_generation_target(requested_backend, field=backend_field)
    queued: list[bool] = []
    with transaction.atomic():
        job = DeliveryJob.objects.create(
            kind=kind,
            mode=mode,
            prompt=prompt,
            params=params,
            requested_backend=requested_backend if kind == DeliveryKind.GENERATION else mode,
            created_via=created_via,
        )
        chosen = links_from_prompt(prompt) if links is None else links
        DeliveryJobAdapter.objects.bulk_create(
            DeliveryJobAdapter(
                job=job,
                adapter_id=link.adapter_id,
                adapter_name=link.adapter_name[:255],
                sdnext_name=link.sdnext_name[:200],
                weight=link.weight,
                position=position,
            )
            for position, link in enumerate(chosen)
        )
        transaction.on_commit(lambda: queued.append(_after_commit(job)))
    if queued == [False]:
        raise QueueUnavailable(job.pk)
    return job


def _check_generation_target(requested_backend: str, *, field: str) -> None:
    targets = generation_targets()
    if targets is None:  # the generation app is not installed
        raise ServiceUnavailable(NO_BACKEND)
    targets.check(requested_backend, field=field)


def _after_commit(job: DeliveryJob) -> bool:
    # Announced before the task is sent: a worker's first progress_update (another process, in the distributed
    # shape) can then never reach a client ahead of generation_started. A refused send follows it with the
    # job's terminal events.
    duration = estimated_duration(job) if job.is_generation else None
    events.publish_started(job, estimated_duration=duration)
    return delivery_job_enqueue(job)


def task_time_limit(job: DeliveryJob) -> int:
    """SPEC 6.2.5: the runner's own limit (generation: the longest read timeout it may use + 120 s), else 1 h."""
    runner = runner_for(job.mode)
    return runner.time_limit(job) if runner is not None else OTHER_TIME_LIMIT


def delivery_job_enqueue(job: DeliveryJob, *, countdown: float | None = None) -> bool:
    """Send ``deliveries.run_delivery(job_id)`` (queue of the mode's runner); record the task id and time.
    When the broker refuses, a ``pending`` job fails with "Task queue unavailable" and False is returned."""
    runner = runner_for(job.mode)
    queue = runner.queue if runner is not None else "default"
    limit = task_time_limit(job)
    try:
        task_id = task_send(RUN_TASK, args=[str(job.pk)], queue=queue, countdown=countdown, time_limit=limit)
    except Exception:
        logger.exception("Could not queue delivery job %s", job.pk)
        if job.fail(error=QUEUE_UNAVAILABLE, error_code="queue_unavailable", expected=(JobStatus.PENDING,)):
            events.publish_terminal(job)
        return False
    DeliveryJob.objects.filter(pk=job.pk, status=JobStatus.PENDING).update(
        celery_task_id=task_id, enqueued_at=timezone.now()
    )
    job.celery_task_id = task_id
    return True


# --- cancellation (SPEC 6.2.4) -----------------------------------------------------------------------


def cancelled_result(job: DeliveryJob) -> dict[str, Any] | None:
    if not job.is_generation:
        return None
    return {
        "status": "cancelled",
        "images": [],
        "generation_info": None,
        "warnings": [],
        "error_message": "Cancelled by user",
        "error_code": "cancelled",
        "backend": job.backend_name,
    }


def delivery_job_cancel(*, job: DeliveryJob, label: Callable[[DeliveryJob], str] | None = None) -> DeliveryJob:
    """``pending``/``running`` → ``cancelled`` at once (the worker interrupts SDNext and discards what comes
    back); ``cancelled`` again is a no-op; a finished job is a 409 naming its status (``label``)."""
    return job_cancel_with(
        job,
        cancel=lambda job: job.cancel(result=cancelled_result(job)),
        announce=events.publish_terminal,
        label=label,
    )
