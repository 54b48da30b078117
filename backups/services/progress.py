"""Progress of writing or reading an archive (``ArchiveProgress``): mirrored into a BackgroundJob row and its
``job_progress`` events, and shown as a tqdm bar over bytes on a terminal (SPEC 5.11, 8)."""

from __future__ import annotations

import threading
from typing import IO, Any

from backups.archive.estimate import format_size
from backups.archive.progress import ArchiveProgress
from loraforge.jobs.reporters import JobProgressReporter


class JobArchiveProgress:
    """Bytes moved of those planned, as the job's progress and message (``Writing <member> (1.50 MB of 3.00 MB)``);
    ``cancelled()`` is the reporter's (the row left ``running``, or the task's deadline passed: that raises).

    Each ``planned`` call starts a phase (a restore validates every member, then applies): with ``phases`` of them
    the progress of phase ``k`` runs from ``k/phases`` to ``(k+1)/phases``."""

    STEPS = 10_000

    def __init__(
        self, reporter: JobProgressReporter, *, verb: str, console: ArchiveProgress | None = None, phases: int = 1
    ) -> None:
        self._reporter = reporter
        self._verb = verb
        self._console = console
        self._phases = max(1, phases)
        self._phase = -1
        self._total = 0
        self._done = 0

    def planned(self, total_bytes: int) -> None:
        self._phase = min(self._phase + 1, self._phases - 1)
        self._total = max(0, total_bytes)
        self._done = 0
        if self._console is not None:
            self._console.planned(total_bytes)

    def advance(self, nbytes: int, member: str) -> None:
        self._done += nbytes
        total = max(self._total, self._done)
        share = self._done / total if total else 1.0
        done = int(self.STEPS * (max(self._phase, 0) + share) / self._phases)
        message = f"{self._verb} {member} ({format_size(self._done)} of {format_size(total)})"
        self._reporter.step(done=done, total=self.STEPS, message=message)
        if self._console is not None:
            self._console.advance(nbytes, member)

    def cancelled(self) -> bool:
        return self._reporter.cancelled() or (self._console is not None and self._console.cancelled())


class ConsoleBytesProgress:
    """A tqdm bar over the archive's bytes on ``stream`` (SPEC 8), created when the size is known; never cancelled."""

    def __init__(self, *, stream: IO[str], enabled: bool) -> None:
        self._stream = stream
        self._enabled = enabled
        self._bar: Any = None
        self._lock = threading.Lock()

    def planned(self, total_bytes: int) -> None:
        if not self._enabled:
            return
        from tqdm import tqdm

        with self._lock:
            if self._bar is None:
                self._bar = tqdm(
                    total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, file=self._stream, leave=False
                )

    def advance(self, nbytes: int, member: str) -> None:
        with self._lock:
            if self._bar is not None:
                if self._bar.n + nbytes > self._bar.total:
                    self._bar.total = self._bar.n + nbytes
                self._bar.update(nbytes)

    def cancelled(self) -> bool:
        return False

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
