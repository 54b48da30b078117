"""The progress reporters long operations write through (SPEC 6.5, STYLE 9): the job row with its events and
heartbeat, the console, and both at once."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import IO, Any

from loraforge.jobs.background import job_publish
from loraforge.jobs.deadline import deadline_check
from loraforge.jobs.heartbeat import Ticker
from loraforge.models import BackgroundJob
from loraforge.models.jobs import JobStatus

logger = logging.getLogger("loraforge.jobs")

PROGRESS_INTERVAL = 0.5  # seconds between progress writes/events at most
HEARTBEAT_SECONDS = 5.0  # the row's heartbeat is renewed at least this often (SPEC: at least every 10 s)
CANCEL_CHECK_INTERVAL = 0.5  # seconds between reads of the row's status at most


class JobProgressReporter:
    """A ``ScanProgress`` that mirrors progress into the job row and ``job_progress`` events.

    Progress = processed/found files, message ``"Hashing <file name> (k/n)"``; written at most every
    ``PROGRESS_INTERVAL`` (the last file always). Used as a context manager, a heartbeat thread keeps the
    row fresh while a long file hashes. ``cancelled()`` turns true once the row left ``running``, and raises
    ``SoftTimeLimitExceeded`` once the task's deadline passed (``loraforge.jobs.deadline``).
    """

    def __init__(self, job: BackgroundJob) -> None:
        self._row = BackgroundJob(pk=job.pk, kind=job.kind, status=JobStatus.RUNNING)
        self._lock = threading.Lock()
        self._progress = 0.0
        self._message = ""
        self._published: tuple[float, str] | None = None
        self._last_write = self._last_check = time.monotonic()
        self._stopped = False
        self._ticker = Ticker(
            self._beat, interval=1.0, name=f"job-heartbeat-{self._row.pk}", join_timeout=HEARTBEAT_SECONDS
        )

    def __enter__(self) -> JobProgressReporter:
        self._ticker.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._ticker.__exit__(*exc_info)

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

    def step(self, *, done: int, total: int, message: str) -> None:
        """Progress of a job that counts items (embeddings): ``done`` of ``total``."""
        with self._lock:
            self._progress = done / total if total else 1.0
            self._message = message
            self._write_if_due(force=done >= total)

    def cancelled(self) -> bool:
        deadline_check()
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
        """A tick of the heartbeat thread. It writes outside the lock (on its own row object), so a scan thread
        holding a database write lock is never blocked behind it."""
        with self._lock:
            due = not self._stopped and time.monotonic() - self._last_write >= HEARTBEAT_SECONDS
            if due:
                self._last_write = time.monotonic()
            progress, message = self._progress, self._message
        if due:
            self._heartbeat(progress, message)

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


class ConsoleBar:
    """A tqdm bar on a terminal (SPEC 8), created on first use; never cancelled. Subclasses say what it counts."""

    def __init__(self, *, stream: IO[str], enabled: bool) -> None:
        self._stream = stream
        self._enabled = enabled
        self._bar: Any = None
        self._lock = threading.Lock()

    def cancelled(self) -> bool:
        return False

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None


class ConsoleProgress(ConsoleBar):
    """A tqdm bar over the bytes to hash, with the current file name, on a terminal (SPEC 8)."""

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


class ConsoleItemsProgress(ConsoleBar):
    """A tqdm bar over items (adapters to embed) on a terminal (SPEC 8): an ``ItemsProgress`` for the console."""

    def __init__(self, *, stream: IO[str], enabled: bool, unit: str = "item") -> None:
        super().__init__(stream=stream, enabled=enabled)
        self._unit = unit

    def step(self, *, done: int, total: int, message: str) -> None:
        if not self._enabled:
            return
        with self._lock:
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=total, unit=self._unit, file=self._stream, leave=False)
            self._bar.update(done - self._bar.n)
            if done >= total:
                self._bar.refresh()  # the last count is shown even when the run took less than tqdm's interval


class ProgressTee:
    """Several reporters as one (each one taking the calls made: a scan's or an items job's); cancelled when any of
    them says so."""

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

    def step(self, *, done: int, total: int, message: str) -> None:
        for reporter in self._reporters:
            reporter.step(done=done, total=total, message=message)

    def cancelled(self) -> bool:
        return any(reporter.cancelled() for reporter in self._reporters)
