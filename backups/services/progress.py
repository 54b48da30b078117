"""Progress of writing or reading an archive (``ArchiveProgress``) mirrored into a BackgroundJob row and its
``job_progress`` events (SPEC 5.11), and on a terminal too (``backups.archive.console``)."""

from __future__ import annotations

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
