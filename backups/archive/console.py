"""A tqdm bar over an archive's bytes on a terminal (SPEC 8), as an ``ArchiveProgress``; never cancelled."""

from __future__ import annotations

from typing import IO, Any


class ConsoleArchiveProgress:
    def __init__(self, *, stream: IO[str], enabled: bool) -> None:
        self._stream = stream
        self._enabled = enabled
        self._bar: Any = None

    def planned(self, total_bytes: int) -> None:
        if not self._enabled:
            return
        from tqdm import tqdm

        self._bar = tqdm(
            total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, file=self._stream, leave=False
        )

    def advance(self, nbytes: int, member: str) -> None:
        if self._bar is not None:
            self._bar.update(nbytes)

    def cancelled(self) -> bool:
        return False

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
