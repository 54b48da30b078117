"""What writing or reading an archive reports as it goes: bytes, and whether to stop (SPEC 5.11, 8)."""

from __future__ import annotations

from typing import Protocol


class ArchiveCancelled(Exception):
    """The progress said ``cancelled()`` between two chunks: the caller removes what was written."""


class ArchiveProgress(Protocol):
    def planned(self, total_bytes: int) -> None:
        """The bytes the operation expects to move (an estimate for a write)."""

    def advance(self, nbytes: int, member: str) -> None:
        """``nbytes`` more were written (or read) for ``member``."""

    def cancelled(self) -> bool:
        """True once the job was cancelled; checked between chunks."""


class NoProgress:
    def planned(self, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int, member: str) -> None:
        pass

    def cancelled(self) -> bool:
        return False
