"""The vocabulary shared by the scanner's parts: options, per-file items, the report, progress hooks.

SPEC 6.6.8 defines the report; ``ScanReport.to_dict()`` is exactly ``job.result`` and
``import_loras --json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

MAX_REPORT_ITEMS = 1000

# Item statuses (SPEC 6.6.6) and the report counter each one feeds.
STATUS_COUNTERS = {
    "created": "created",
    "updated": "updated",
    "changed": "changed",
    "unchanged": "unchanged",
    "moved": "moved",
    "duplicate": "duplicates",
    "missing": "missing",
    "excluded": "excluded",
    "error": "errors",
}


@dataclass(frozen=True)
class ScanOptions:
    paths: tuple[Path, ...] | None = None  # files or folders inside the LoRA roots; None = every root
    dry_run: bool = False  # no database writes at all, not even cache rows
    force_rehash: bool = False  # ignore the (path, size, mtime_ns) cache and re-read sidecars
    include_excluded: bool = False
    workers: int | None = None  # hashing threads; None = LORAFORGE_SCAN_WORKERS
    announce: bool = True  # send ``adapters_imported`` afterwards (embeddings); off with ``--no-embeddings``


@dataclass(frozen=True)
class ScanItem:
    path: str
    status: str  # a key of STATUS_COUNTERS
    adapter_id: str | None = None
    detail: str | None = None  # error text, or warnings joined by "; ", or None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "status": self.status, "adapter_id": self.adapter_id, "detail": self.detail}


@dataclass
class ScanReport:
    dry_run: bool = False
    roots: list[str] = field(default_factory=list)
    files_seen: int = 0
    hashed: int = 0
    cached: int = 0
    bytes_hashed: int = 0
    created: int = 0
    updated: int = 0
    changed: int = 0
    unchanged: int = 0
    moved: int = 0
    duplicates: int = 0
    missing: int = 0
    excluded: int = 0
    errors: int = 0
    duration_seconds: float = 0.0
    items: list[ScanItem] = field(default_factory=list)
    items_truncated: bool = False

    def add(self, item: ScanItem) -> None:
        """Count the item under its status; list it unless it is ``unchanged`` (at most 1000 listed)."""
        counter = STATUS_COUNTERS[item.status]
        setattr(self, counter, getattr(self, counter) + 1)
        if item.status == "unchanged":
            return
        if len(self.items) < MAX_REPORT_ITEMS:
            self.items.append(item)
        else:
            self.items_truncated = True

    def to_dict(self, *, include_items: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "dry_run": self.dry_run,
            "roots": list(self.roots),
            **{name: getattr(self, name) for name in _COUNTERS},
            "duration_seconds": round(self.duration_seconds, 3),
        }
        if include_items:
            data["items"] = [item.to_dict() for item in self.items]
            data["items_truncated"] = self.items_truncated
        return data


_COUNTERS = (
    "files_seen", "hashed", "cached", "bytes_hashed", "created", "updated", "changed", "unchanged", "moved",
    "duplicates", "missing", "excluded", "errors",
)  # fmt: skip


class ScanProgress(Protocol):
    """Hooks the scan calls while it runs; the job reporter, tqdm and tests implement them.

    Called from the scanning thread (``file_done``) and from hashing threads (``bytes_read``), so
    implementations must be thread-safe and cheap.
    """

    def planned(self, *, files: int, bytes_to_hash: int) -> None:
        """After the walk and the cache lookup: how many files will be processed and bytes hashed."""

    def bytes_read(self, count: int) -> None:
        """Some bytes of some file were hashed."""

    def file_done(self, *, path: Path, index: int, total: int) -> None:
        """The ``index``-th (1-based) of ``total`` files is processed."""

    def cancelled(self) -> bool:
        """True when the scan should stop at the next file (cooperative cancel)."""
        return False


class NullProgress:
    def planned(self, *, files: int, bytes_to_hash: int) -> None:
        pass

    def bytes_read(self, count: int) -> None:
        pass

    def file_done(self, *, path: Path, index: int, total: int) -> None:
        pass

    def cancelled(self) -> bool:
        return False


class ScanCancelled(Exception):
    """Raised by the scan when ``ScanProgress.cancelled()`` turned true; carries the partial report."""

    def __init__(self, report: ScanReport) -> None:
        super().__init__("scan cancelled")
        self.report = report
