"""The progress poller of a running generation (SPEC 6.2.3 step 4, 6.3.3, 6.5).

Every ``SDNEXT_POLL_INTERVAL`` a thread reads ``/sdapi/v1/progress`` and maps it (SDNext's value is global and
phase-based: it restarts per iteration and drops during VAE decode, so the job's value never goes back and
stays below 1 until the txt2img answer arrives). The job row is written at most once per second, heartbeat
and lease are renewed at most every 5 s, and ``progress_update`` is published only when the rounded progress,
the step or the status changed. Once the job is ``cancelled`` the thread sends ``/interrupt`` on every tick
(SDNext loses an interrupt that arrives between phases) for at most 60 s, until txt2img returns.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from deliveries import events
from deliveries.models import DeliveryJob
from generation.backends.leases import lease_renew
from generation.sdnext.client import SDNextClient
from loraforge.jobs.heartbeat import Ticker
from loraforge.models.jobs import JobStatus

logger = logging.getLogger("loraforge.generation")

MAX_RUNNING_PROGRESS = 0.99
WRITE_INTERVAL = 1.0
HEARTBEAT_INTERVAL = 5.0
CANCEL_INTERRUPT_SECONDS = 60.0


@dataclass(frozen=True)
class Progress:
    progress: float = 0.0
    current_step: int | None = None
    total_steps: int | None = None
    eta_seconds: float | None = None


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return float(value)
    return None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def map_progress(previous: Progress, body: Mapping[str, Any]) -> Progress:
    """SPEC 6.3.3: ``min(0.99, max(previous, clamp(progress)))``; steps when ``sampling_steps > 0``; eta > 0."""
    value = min(1.0, max(0.0, _number(body.get("progress")) or 0.0))
    raw_state = body.get("state")
    state: Mapping[str, Any] = raw_state if isinstance(raw_state, dict) else {}
    steps, step = _count(state.get("sampling_steps")), _count(state.get("sampling_step"))
    current, total = previous.current_step, previous.total_steps
    if steps is not None and steps > 0:
        current, total = (step if step is not None else current), steps
    eta = _number(body.get("eta_relative"))
    return Progress(
        progress=min(MAX_RUNNING_PROGRESS, max(previous.progress, value)),
        current_step=current,
        total_steps=total,
        eta_seconds=eta if eta is not None and eta > 0 else None,
    )


def _published_key(progress: Progress, status: str) -> tuple[float, int | None, str]:
    return round(progress.progress, 2), progress.current_step, status


class ProgressPoller:
    """Runs while txt2img blocks: ``with ProgressPoller(...): client.txt2img(...)``. The poller owns its client
    (a second session) and its own job instance and database connection."""

    def __init__(
        self,
        *,
        job: DeliveryJob,
        backend_id: uuid.UUID,
        client: SDNextClient,
        lease_seconds: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._job_id = job.pk
        self._backend_id = backend_id
        self._client = client
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._interval = float(settings.SDNEXT_POLL_INTERVAL)
        # Every 5 s, or more often when LORAFORGE_JOB_STALE_SECONDS is very short: a live job never looks orphaned.
        self._beat_interval = min(HEARTBEAT_INTERVAL, settings.LORAFORGE_JOB_STALE_SECONDS / 3)
        self._progress = Progress(job.progress, job.current_step, job.total_steps, job.eta_seconds)
        self._written = self._progress
        self._published = _published_key(self._progress, JobStatus.RUNNING)
        self._last_beat = self._last_lease = clock()
        self._last_write = self._last_beat - WRITE_INTERVAL  # the first change is written at once
        self._cancelled_at: float | None = None
        self._job: DeliveryJob | None = None  # the poller's own instance, read by its thread
        self._lock = threading.Lock()  # publishing vs. stopping: nothing is published after __exit__
        self._ticker = Ticker(
            self._tick,
            interval=self._interval,
            name=f"sdnext-progress-{job.pk}",
            join_timeout=30,
            on_stop=self._client.close,
        )

    def __enter__(self) -> ProgressPoller:
        self._ticker.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._ticker.halted.set()
        self._ticker.__exit__(*exc_info)

    def _tick(self) -> None:
        if self._job is None:
            self._job = DeliveryJob.objects.get(pk=self._job_id)
        job = self._job
        now = self._clock()
        if self._cancelled_at is None:
            body = self._client.progress()
            if body is not None:
                self._progress = map_progress(self._progress, body)
            if not self._write(job, now):
                self._check_cancelled(job, now)
        if now - self._last_lease >= HEARTBEAT_INTERVAL:
            lease_renew(backend_id=self._backend_id, job_id=self._job_id, seconds=self._lease_seconds)
            self._last_lease = now
        if self._cancelled_at is not None and now - self._cancelled_at <= CANCEL_INTERRUPT_SECONDS:
            self._client.interrupt()

    def _write(self, job: DeliveryJob, now: float) -> bool:
        """A progress write (≤ 1/s) or a heartbeat (≤ every 5 s); True when one happened (``job`` re-read)."""
        if self._progress != self._written and now - self._last_write >= WRITE_INTERVAL:
            self._write_progress(job)
            self._last_write = self._last_beat = now
        elif now - self._last_beat >= self._beat_interval:
            job.heartbeat()
            self._last_beat = now
        else:
            return False
        if job.status == JobStatus.CANCELLED:
            self._cancelled_at = now
        return True

    def _write_progress(self, job: DeliveryJob) -> None:
        """The write and its event in one transaction: a cancel (a conditional UPDATE of the same row) waits
        for it, so the cancel's own events always come after this ``progress_update``."""
        state = self._progress
        with transaction.atomic():
            job.set_progress(
                progress=state.progress,
                current_step=state.current_step,
                total_steps=state.total_steps,
                eta_seconds=state.eta_seconds,
            )
            self._written = state
            self._publish(job)

    def _check_cancelled(self, job: DeliveryJob, now: float) -> None:
        status = DeliveryJob.objects.filter(pk=self._job_id).values_list("status", flat=True).first()
        if status == JobStatus.CANCELLED:
            self._cancelled_at = now

    def _publish(self, job: DeliveryJob) -> None:
        if job.status != JobStatus.RUNNING:
            return
        key = _published_key(Progress(job.progress, job.current_step), job.status)
        with self._lock:
            if key != self._published and not self._ticker.halted.is_set():
                events.publish_progress(job)
                self._published = key
