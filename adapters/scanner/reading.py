"""Reading model files: the safetensors header and the full-file SHA-256, in a thread pool (SPEC 6.6.3).

hashlib releases the GIL, so ``LORAFORGE_SCAN_WORKERS`` threads hash files in parallel. Results come
back in submission order; only a small window of files is in flight, so memory stays flat however
large the library.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Generic, TypeVar

from adapters.scanner import hashing
from adapters.scanner.headers import Header, read_header
from adapters.scanner.mapping_values import json_object

Task = TypeVar("Task")


@dataclass(frozen=True)
class FileRead:
    sha256: str | None
    header: Header
    bytes_read: int = 0


def read_model_file(
    path: Path,
    *,
    fmt: str,
    size: int,
    header_limit: int,
    compute_hash: bool = True,
    on_bytes: Callable[[int], None] | None = None,
) -> FileRead:
    """Header (safetensors only: ``.pt``/``.ckpt`` are never parsed) and hash; ``OSError`` when unreadable."""
    header = Header(metadata=None)
    if fmt == "safetensors":
        with open(path, "rb") as handle:
            header = storable(read_header(handle, size, header_limit))
    if not compute_hash:
        return FileRead(None, header)
    total = 0

    def count(read: int) -> None:
        nonlocal total
        total += read
        if on_bytes is not None:
            on_bytes(read)

    digest = hashing.sha256_file(path, on_bytes=count)
    return FileRead(digest, header, total)


def storable(header: Header) -> Header:
    """Header metadata both databases can store: no NUL characters (PostgreSQL refuses them), bounded depth."""
    if header.metadata is None:
        return header
    return Header(metadata=json_object(header.metadata) or {}, error=header.error)


class Hasher(Generic[Task]):
    """Reads files in worker threads ahead of the caller, who takes the results in submission order."""

    def __init__(self, work: Callable[[Task], FileRead], *, workers: int) -> None:
        self.work = work
        self.workers = max(1, workers)
        self.window = self.workers * 2
        self.waiting: deque[Task] = deque()
        self.running: deque[tuple[Task, Future[FileRead | OSError]]] = deque()
        self.executor: ThreadPoolExecutor | None = None

    def __enter__(self) -> Hasher[Task]:
        self.executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="loraforge-hash")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)

    def schedule(self, tasks: Iterable[Task]) -> None:
        self.waiting.extend(tasks)
        self._fill()

    def ready(self, task: Task) -> bool:
        """False when taking ``task`` would block (its file is still being read)."""
        return not self.running or self.running[0][0] is not task or self.running[0][1].done()

    def take(self, task: Task) -> FileRead | OSError:
        """The result of ``task``, the next scheduled one; an unreadable file gives its ``OSError``."""
        queued, future = self.running.popleft()
        if queued is not task:
            raise RuntimeError("Hasher results must be taken in the order they were scheduled")
        self._fill()
        return future.result()

    def _fill(self) -> None:
        assert self.executor is not None
        while self.waiting and len(self.running) < self.window:
            task = self.waiting.popleft()
            self.running.append((task, self.executor.submit(self._safe, task)))

    def _safe(self, task: Task) -> FileRead | OSError:
        try:
            return self.work(task)
        except OSError as exc:
            return exc
