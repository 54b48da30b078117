"""A tqdm bar over an archive's bytes on a terminal (SPEC 8), as an ``ArchiveProgress``; never cancelled."""

from __future__ import annotations

from loraforge.jobs.reporters import ConsoleBar


class ConsoleArchiveProgress(ConsoleBar):
    """A tqdm bar over the archive's bytes on ``stream`` (SPEC 8), created when the size is known."""

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
