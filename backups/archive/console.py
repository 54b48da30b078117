"""A tqdm bar over an archive's bytes on a terminal (SPEC 8), as an ``ArchiveProgress``; never cancelled."""

from __future__ import annotations

import threading
from typing import IO, Any


class ConsoleArchiveProgress:
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
