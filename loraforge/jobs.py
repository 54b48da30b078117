"""BackgroundJob services: creation, state changes with their ``job_progress`` events, cancel, recovery,
WebSocket snapshots, and the progress reporters that long operations write through (SPEC 5.11, 6.2, 6.5).

Every state change goes through the model's conditional writes; the event is published only by whoever
performed the write, so a job that some other writer already finished publishes nothing more.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from loraforge.errors import Conflict, ServiceUnavailable
from loraforge.models import BackgroundJob
from loraforge.models.jobs import ACTIVE_STATUSES, BackgroundJobKind, JobStatus
from loraforge.progress import envelope, publish

logger = logging.getLogger("loraforge.jobs")

JOB_PROGRESS = "job_progress"
QUEUE_UNAVAILABLE = "Task queue unavailable"
WORKER_LOST = "Worker lost while running the job"
JOB_CANCELLED = "Job cancelled"
# Kinds whose running jobs stop cooperatively; the others (import, restore, export) only while pending.
CANCELLABLE_WHILE_RUNNING = frozenset({BackgroundJobKind.SCAN, BackgroundJobKind.EMBEDDINGS, BackgroundJobKind.BACKUP})
# The task that runs each kind, by name (the core imports no app): recovery re-enqueues pending jobs with it.
JOB_TASKS: dict[str, str] = {BackgroundJobKind.SCAN: "adapters.scan_library"}
# Result keys left out of events (SPEC 6.5: scan reports without their items).
EVENT_RESULT_OMITS: dict[str, tuple[str, ...]] = {BackgroundJobKind.SCAN: ("items", "items_truncated")}
PENDING_REQUEUE_SECONDS = 300
SNAPSHOT_LIMIT = 50


class QueueUnavailable(ServiceUnavailable):
    def __init__(self, job_id: uuid.UUID | str) -> None:
        super().__init__(QUEUE_UNAVAILABLE, job_id=str(job_id))
        self.job_id = str(job_id)


# --- events ---------------------------------------------------------------------------------------


def job_event_data(job: BackgroundJob, *, snapshot: bool = False) -> dict[str, Any]:
    """The ``data`` of a ``job_progress`` event; ``result`` only once the job is terminal."""
    result = job.result if job.is_terminal else None
    if isinstance(result, dict):
        omitted = EVENT_RESULT_OMITS.get(job.kind, ())
        result = {key: value for key, value in result.items() if key not in omitted}
    return {
        "job_id": str(job.pk),
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "message": job.message,
        "result": result,
        "error": job.error,
        "snapshot": snapshot,
    }


def job_publish(job: BackgroundJob) -> None:
    publish(job.pk, JOB_PROGRESS, job_event_data(job))


# --- creation and state changes -------------------------------------------------------------------


def background_job_create(*, kind: str, params: dict[str, Any], created_via: str) -> BackgroundJob:
    """A ``pending`` job; its event is published once the surrounding transaction commits."""
    job = BackgroundJob.objects.create(kind=kind, params=params, created_via=created_via)
    snapshot = job_event_data(job)
    transaction.on_commit(lambda: publish(job.pk, JOB_PROGRESS, snapshot))
    return job


def job_enqueue(*, job: BackgroundJob, send: Callable[[], Any]) -> bool:
    """Run ``send`` (e.g. ``task.delay``); when the broker refuses, the job fails with "Task queue unavailable"."""
    try:
        result = send()
    except Exception:
        logger.exception("Could not queue %s job %s", job.kind, job.pk)
        if job.fail(QUEUE_UNAVAILABLE):
            job_publish(job)
        return False
    task_id = getattr(result, "id", None)
    if task_id:
        BackgroundJob.objects.filter(pk=job.pk).update(celery_task_id=str(task_id)[:64])
        job.celery_task_id = str(task_id)[:64]
    return True


def job_start(job: BackgroundJob) -> bool:
    started = job.start()
    if started:
        job_publish(job)
    return started


def job_succeed(job: BackgroundJob, result: dict[str, Any] | None, message: str = "") -> bool:
    done = job.succeed(result, message=message)
    if done:
        job_publish(job)
    return done


def job_fail(job: BackgroundJob, error: str, result: dict[str, Any] | None = None) -> bool:
    failed = job.fail(error, result=result)
    if failed:
        job_publish(job)
    return failed


def job_keep_result(job: BackgroundJob, result: dict[str, Any]) -> bool:
    """Attach the partial report of a job cancelled while it ran (its status does not change)."""
    kept = bool(
        BackgroundJob.objects.filter(pk=job.pk, status=JobStatus.CANCELLED, result__isnull=True).update(result=result)
    )
    job.refresh_from_db()
    if kept:
        job_publish(job)
    return kept


def _not_cancellable(status: str) -> Conflict:
    return Conflict(f"Job cannot be cancelled in its current state ({status})")


def job_cancel(*, job: BackgroundJob) -> BackgroundJob:
    """``pending``/``running`` → ``cancelled`` (cooperative: the worker stops at its next check)."""
    if job.status == JobStatus.CANCELLED:
        return job
    if job.is_terminal or (job.status == JobStatus.RUNNING and job.kind not in CANCELLABLE_WHILE_RUNNING):
        raise _not_cancellable(job.status)
    if job.cancel():
        job_publish(job)
        return job
    return job_cancel(job=job)  # the status moved meanwhile (cancel() re-read it): decide again


# --- recovery (SPEC 6.2.6) ------------------------------------------------------------------------


def _stale_running(now: datetime) -> Q:
    stale_before = now - timedelta(seconds=settings.LORAFORGE_JOB_STALE_SECONDS)
    return Q(status=JobStatus.RUNNING) & (
        Q(heartbeat_at__lt=stale_before)
        | Q(heartbeat_at__isnull=True, started_at__lt=stale_before)
        | Q(heartbeat_at__isnull=True, started_at__isnull=True)
    )


def _fail_if_stale(job_id: uuid.UUID, now: datetime) -> BackgroundJob | None:
    """One conditional write: a job whose heartbeat was renewed since it was selected is left alone."""
    updated = (
        BackgroundJob.objects.filter(_stale_running(now), pk=job_id)
        .update(status=JobStatus.FAILED, error=WORKER_LOST, finished_at=now)
    )  # fmt: skip
    if not updated:
        return None
    job = BackgroundJob.objects.get(pk=job_id)
    job_publish(job)
    return job


def job_recover_if_stale(job: BackgroundJob) -> bool:
    """A redelivered task finding its job ``running``: fail it when its heartbeat is stale, else leave it."""
    return _fail_if_stale(job.pk, timezone.now()) is not None


def _requeue(job: BackgroundJob, now: datetime) -> bool:
    from loraforge.celery import app

    task_name = JOB_TASKS.get(job.kind)
    if task_name is None:
        return False
    # heartbeat_at of a pending job records its last (re-)enqueue, so a job is re-sent at most every 300 s.
    if not BackgroundJob.objects.filter(pk=job.pk, status=JobStatus.PENDING).update(heartbeat_at=now):
        return False
    return job_enqueue(job=job, send=lambda: app.send_task(task_name, args=[str(job.pk)]))


def background_jobs_recover(*, dry_run: bool = False, requeue_all_pending: bool = False) -> list[str]:
    """Fail running jobs with a stale heartbeat; re-enqueue pending ones nobody took (or all of them, after an
    in-memory broker started empty). Returns one line per affected job."""
    now = timezone.now()
    lines: list[str] = []
    for job_id in BackgroundJob.objects.filter(_stale_running(now)).values_list("pk", flat=True):
        if dry_run or _fail_if_stale(job_id, now) is not None:
            lines.append(f"{job_id} running → failed ({WORKER_LOST})")
    pending = BackgroundJob.objects.filter(status=JobStatus.PENDING, kind__in=list(JOB_TASKS))
    if not requeue_all_pending:
        cutoff = now - timedelta(seconds=PENDING_REQUEUE_SECONDS)
        pending = pending.filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff))
    for job in pending:
        if dry_run or _requeue(job, now):
            lines.append(f"{job.pk} pending → re-queued")
    return lines


RecoveryHook = Callable[..., list[str]]
_recovery_hooks: list[RecoveryHook] = []


def register_recovery_hook(hook: RecoveryHook) -> None:
    """An app's sweeper (``hook(dry_run=..., requeue_all_pending=...)``), run with the BackgroundJob one when
    the embedded worker starts (the deliveries app registers its DeliveryJob recovery)."""
    if hook not in _recovery_hooks:
        _recovery_hooks.append(hook)


def jobs_recover(*, dry_run: bool = False, requeue_all_pending: bool = False) -> list[str]:
    """BackgroundJobs, then every registered app's jobs."""
    lines = background_jobs_recover(dry_run=dry_run, requeue_all_pending=requeue_all_pending)
    for hook in _recovery_hooks:
        lines.extend(hook(dry_run=dry_run, requeue_all_pending=requeue_all_pending))
    return lines


# --- WebSocket snapshots (SPEC 6.5) ---------------------------------------------------------------

# A provider answers "events for these job ids" (or, for None, "for the active jobs") as
# (created_at, envelope) pairs. BackgroundJobs are built in; the deliveries app registers its own
# provider (progress_update/generation_complete snapshots of DeliveryJobs) from its AppConfig.ready().
SnapshotProvider = Callable[[list[str] | None], list[tuple[datetime, dict[str, Any]]]]


def background_job_snapshots(job_ids: list[str] | None) -> list[tuple[datetime, dict[str, Any]]]:
    if job_ids is None:
        jobs = BackgroundJob.objects.filter(status__in=ACTIVE_STATUSES).order_by("-created_at")[:SNAPSHOT_LIMIT]
    else:
        jobs = BackgroundJob.objects.filter(pk__in=job_ids)
    return [(job.created_at, envelope(JOB_PROGRESS, job_event_data(job, snapshot=True))) for job in jobs]


_snapshot_providers: list[SnapshotProvider] = [background_job_snapshots]


def register_snapshot_provider(provider: SnapshotProvider) -> None:
    if provider not in _snapshot_providers:
        _snapshot_providers.append(provider)


def job_snapshots(job_ids: Iterable[str] | None) -> list[dict[str, Any]]:
    """Snapshot envelopes for existing jobs among ``job_ids``, or for at most 50 active jobs (``None``)."""
    wanted = None if job_ids is None else list(job_ids)
    if wanted == []:
        return []
    found: list[tuple[datetime, dict[str, Any]]] = []
    for provider in _snapshot_providers:
        found.extend(provider(wanted))
    found.sort(key=lambda pair: pair[0], reverse=True)
    events = [event for _created, event in found]
    return events[:SNAPSHOT_LIMIT] if wanted is None else events


# --- progress reporters ---------------------------------------------------------------------------

PROGRESS_INTERVAL = 0.5  # seconds between progress writes/events at most
HEARTBEAT_SECONDS = 5.0  # the row's heartbeat is renewed at least this often (SPEC: at least every 10 s)
CANCEL_CHECK_INTERVAL = 0.5  # seconds between reads of the row's status at most


class JobProgressReporter:
    """A ``ScanProgress`` that mirrors progress into the job row and ``job_progress`` events.

    Progress = processed/found files, message ``"Hashing <file name> (k/n)"``; written at most every
    ``PROGRESS_INTERVAL`` (the last file always). Used as a context manager, a heartbeat thread keeps the
    row fresh while a long file hashes. ``cancelled()`` turns true once the row left ``running``.
    """

    def __init__(self, job: BackgroundJob) -> None:
        self._row = BackgroundJob(pk=job.pk, kind=job.kind, status=JobStatus.RUNNING)
        self._lock = threading.Lock()
        self._progress = 0.0
        self._message = ""
        self._published: tuple[float, str] | None = None
        self._last_write = self._last_check = time.monotonic()
        self._stopped = False
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> JobProgressReporter:
        self._thread = threading.Thread(target=self._beat, name=f"job-heartbeat-{self._row.pk}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(HEARTBEAT_SECONDS)

    def planned(self, *, files: int, bytes_to_hash: int) -> None:
        with self._lock:
            self._message = f"Scanning {files} file{'' if files == 1 else 's'}"
            self._write_if_due()

    def bytes_read(self, count: int) -> None:
        pass  # progress counts files; the heartbeat thread keeps the row fresh during a long file

    def file_done(self, *, path: Path, index: int, total: int) -> None:
        with self._lock:
            self._progress = index / total if total else 1.0
            self._message = f"Hashing {path.name} ({index}/{total})"
            self._write_if_due(force=index >= total)

    def cancelled(self) -> bool:
        with self._lock:
            if not self._stopped and time.monotonic() - self._last_check >= CANCEL_CHECK_INTERVAL:
                self._last_check = time.monotonic()
                status = BackgroundJob.objects.filter(pk=self._row.pk).values_list("status", flat=True).first()
                self._stopped = status != JobStatus.RUNNING
            return self._stopped

    def _write_if_due(self, *, force: bool = False) -> None:
        if force or time.monotonic() - self._last_write >= PROGRESS_INTERVAL:
            self._write()

    def _write(self) -> None:
        """Caller holds the lock. Best effort: a failed progress write never fails the job."""
        self._last_write = time.monotonic()
        try:
            if not self._row.set_progress(self._progress, self._message):
                self._stopped = self._row.status != JobStatus.RUNNING
                return
        except Exception:
            logger.warning("Could not write the progress of job %s", self._row.pk, exc_info=True)
            return
        if self._published != (self._progress, self._message):
            self._published = (self._progress, self._message)
            job_publish(self._row)

    def _beat(self) -> None:
        """The heartbeat thread. It writes outside the lock (on its own row object), so a scan thread holding a
        database write lock is never blocked behind it."""
        try:
            while not self._halt.wait(1.0):
                with self._lock:
                    due = not self._stopped and time.monotonic() - self._last_write >= HEARTBEAT_SECONDS
                    if due:
                        self._last_write = time.monotonic()
                    progress, message = self._progress, self._message
                if due:
                    self._heartbeat(progress, message)
        finally:
            connection.close()  # this thread's own connection

    def _heartbeat(self, progress: float, message: str) -> None:
        row = BackgroundJob(pk=self._row.pk, kind=self._row.kind, status=JobStatus.RUNNING)
        try:
            alive = row.set_progress(progress, message)
        except Exception:
            logger.warning("Could not renew the heartbeat of job %s", row.pk, exc_info=True)
            return
        if not alive:
            with self._lock:
                self._stopped = row.status != JobStatus.RUNNING


class ConsoleProgress:
    """A tqdm bar over the bytes to hash, with the current file name, on a terminal (SPEC 8)."""

    def __init__(self, *, stream: IO[str], enabled: bool) -> None:
        self._stream = stream
        self._enabled = enabled
        self._bar: Any = None
        self._lock = threading.Lock()

    def planned(self, *, files: int, bytes_to_hash: int) -> None:
        if not self._enabled:
            return
        from tqdm import tqdm

        with self._lock:
            self._bar = tqdm(
                total=bytes_to_hash, unit="B", unit_scale=True, unit_divisor=1024, file=self._stream, leave=False
            )

    def bytes_read(self, count: int) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.update(count)

    def file_done(self, *, path: Path, index: int, total: int) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.set_postfix_str(f"{path.name} ({index}/{total})")

    def cancelled(self) -> bool:
        return False

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None


class ProgressTee:
    """Several reporters as one; cancelled when any of them says so."""

    def __init__(self, *reporters: Any) -> None:
        self._reporters = [reporter for reporter in reporters if reporter is not None]

    def planned(self, *, files: int, bytes_to_hash: int) -> None:
        for reporter in self._reporters:
            reporter.planned(files=files, bytes_to_hash=bytes_to_hash)

    def bytes_read(self, count: int) -> None:
        for reporter in self._reporters:
            reporter.bytes_read(count)

    def file_done(self, *, path: Path, index: int, total: int) -> None:
        for reporter in self._reporters:
            reporter.file_done(path=path, index=index, total=total)

    def cancelled(self) -> bool:
        return any(reporter.cancelled() for reporter in self._reporters)
