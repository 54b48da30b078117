"""The library scan (SPEC 6.6): walk, cache lookup, hashing in threads, identity, writes, report.

Public API:

- ``library_scan(options=, progress=)`` scans the LoRA folders (or ``options.paths``) and returns the
  report (raises ``ScanCancelled(report)`` when ``progress.cancelled()`` turns true);
- ``adapter_rescan(adapter=, force_rehash=)`` re-reads one adapter's file and sidecars (``POST
  /adapters/{id}/rescan``);
- ``register_file(path=)`` imports a new file into an unsaved adapter (``POST /adapters``), and
  ``registered_file_row(registered=)`` reads its cache row, ``remember_registered_file(adapter=, row=)`` records it
  once the adapter is saved.

Writes are committed in transactions of about ``BATCH_SIZE`` files, and never while the scan waits
for a file to be hashed, so SQLite's single writer is never held for long.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from adapters.models import Adapter, HashStatus
from adapters.scanner.apply import Ingest, IngestState
from adapters.scanner.cache import (
    CacheRow,
    ReadRow,
    clear_exclusions,
    excluded_hashes,
    fingerprint,
    load_rows,
    read_row_insert,
)
from adapters.scanner.headers import Header
from adapters.scanner.identity import Index, NameRegistry
from adapters.scanner.ingest import FileTask, import_fields, make_facts, scan_item
from adapters.scanner.inspect import header_limit_bytes
from adapters.scanner.paths import file_stem, lora_roots, model_format, root_of, sdnext_name_for
from adapters.scanner.reading import FileRead, Hasher, read_model_file
from adapters.scanner.sidecars import SidecarFile, find_sidecars, read_sidecars
from adapters.scanner.types import NullProgress, ScanCancelled, ScanItem, ScanOptions, ScanProgress, ScanReport
from adapters.scanner.walk import WalkedFile, list_siblings, normalized, scan_scopes, walk_library
from adapters.signals import adapters_imported
from loraforge.inserts import CompiledInsert
from loraforge.prepared import PreparedQuery

logger = logging.getLogger("loraforge.adapters")

BATCH_SIZE = 200


def library_scan(*, options: ScanOptions, progress: ScanProgress | None = None) -> ScanReport:
    """Scan the LoRA folders (or ``options.paths``) per SPEC 6.6 and return the report."""
    started = time.monotonic()
    scopes = scan_scopes(options.paths, lora_roots())
    walk = walk_library(scopes, roots=lora_roots(), ignore=settings.LORAFORGE_SCAN_IGNORE)
    report = ScanReport(dry_run=options.dry_run, roots=[str(scope) for scope in scopes])
    for problem in walk.problems:
        report.add(ScanItem(path=problem.path, status="error", detail=problem.detail))
    scan = _Scan(options, progress or NullProgress(), report, scopes)
    return scan.run(walk.files, started=started)


def adapter_rescan(*, adapter: Adapter, force_rehash: bool = False) -> tuple[Adapter, ScanItem]:
    """Re-read one adapter's file and sidecars now (``POST /adapters/{id}/rescan``).

    A missing file sets ``missing_since`` (status ``missing``); an unreadable one ``hash_status: "error"``.
    """
    started = time.monotonic()
    path = normalized(adapter.file_path)
    options = ScanOptions(paths=(Path(path),), force_rehash=force_rehash)
    report = ScanReport(roots=[path])
    files = []
    if root_of(path) is None:
        report.add(scan_item(path, "error", adapter.pk, ["File is outside the configured LoRA folders"]))
    else:
        info = _regular_file_stat(path)
        if info is not None:
            files.append(WalkedFile(Path(path), info, list_siblings(os.path.dirname(path))))
        _Scan(options, NullProgress(), report, [Path(path)], only_paths=[path]).run(files, started=started)
    item = next((item for item in report.items if item.path == path), None)
    refreshed = Adapter.objects.get(pk=adapter.pk)
    return refreshed, item or scan_item(path, "unchanged", adapter.pk)


def _regular_file_stat(path: str) -> os.stat_result | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info if not os.path.isdir(path) else None


class Registered(NamedTuple):
    adapter: Adapter
    warnings: list[str]
    sidecar_fingerprint: str  # of the sidecar and preview files read


def register_file(*, path: Path) -> Registered:
    """A new file as an unsaved adapter, like a one-file scan creating it: header, sidecars and the hash when the
    file is at most ``LORAFORGE_SYNC_HASH_MAX_MB`` (else ``hash_status: "pending"``). Raises ``OSError``.
    The caller names the adapter (``POST /adapters`` requires a name) and checks it, so the imported name is not
    made unique here."""
    info = os.stat(path)
    fmt = model_format(path) or "safetensors"
    sync_limit = int(settings.LORAFORGE_SYNC_HASH_MAX_MB) * 1024 * 1024
    read = read_model_file(
        path, fmt=fmt, size=info.st_size, header_limit=header_limit_bytes(), compute_hash=info.st_size <= sync_limit
    )
    facts = make_facts(WalkedFile(path, info), fmt, read.sha256, read.header)
    adapter = Adapter(file_path=str(path), sdnext_name=sdnext_name_for(path)[:200])
    found = find_sidecars(path)
    warnings = import_fields(adapter, facts, found, creating=True, names=None)
    adapter.hash_status = HashStatus.DONE if read.sha256 else HashStatus.PENDING
    adapter.last_ingested_at = timezone.now()
    return Registered(adapter, warnings, fingerprint(found))


def registered_file_row(*, registered: Registered) -> ReadRow | None:
    """The cache row of a file ``register_file`` read (its stat and the sidecars it read): taken before the write
    transaction, so no system call runs while the database's write lock is held. None when the file vanished."""
    adapter = registered.adapter
    path = Path(adapter.file_path)
    try:
        info = os.stat(path)
    except OSError:
        return None
    as_read = info.st_size == adapter.file_size and _mtime(info.st_mtime_ns) == adapter.file_mtime
    return ReadRow(
        path=str(path),
        size=info.st_size,
        mtime_ns=info.st_mtime_ns,
        sha256=adapter.sha256 if as_read else None,  # changed since it was read: the next scan reads it again
        header=Header(metadata=adapter.header_metadata, error=adapter.header_error),
        sidecar_fingerprint=registered.sidecar_fingerprint,
        adapter_id=adapter.pk,
    )


# Unordered: the model's ordering (lower(name), id) made SQLite walk that index over the whole table.
_WITH_COPIES: PreparedQuery[Adapter] = PreparedQuery(
    lambda: Adapter.objects.order_by().filter(has_duplicates=True).values_list("id", "duplicate_paths")
)


def registered_file_insert(row: ReadRow) -> CompiledInsert:
    """``registered_file_row``'s row as its compiled insert, for ``remember_registered_file`` (compiled before the
    write transaction opens: ``loraforge.inserts``)."""
    return read_row_insert(row, timezone.now(), excluded=False)


def remember_registered_file(*, adapter: Adapter, row: ReadRow | None, insert: CompiledInsert | None = None) -> None:
    """After the save of a registered file: its cache row, exclusions of its path and hash lifted, the path dropped
    from other adapters' copies. Call inside the transaction that saved it, with ``registered_file_row``'s row (and
    that row's ``registered_file_insert``, when compiled beforehand)."""
    if row is None:
        return
    path = Path(adapter.file_path)
    (insert or registered_file_insert(row)).execute()
    clear_exclusions(path=str(path), sha256=adapter.sha256)
    listing = _WITH_COPIES.rows()
    for other_id in [
        other_id for other_id, copies in listing if other_id != adapter.pk and str(path) in (copies or [])
    ]:
        other = Adapter.objects.get(pk=other_id)
        other.duplicate_paths = [copy for copy in other.duplicate_paths if copy != str(path)]
        other.save(update_fields=["duplicate_paths"])


def _mtime(mtime_ns: int) -> datetime:
    """As ``FileFacts.mtime`` computes ``Adapter.file_mtime``."""
    return datetime.fromtimestamp(mtime_ns / 1e9, tz=UTC)


def sidecar_stems(siblings: Mapping[str, os.stat_result]) -> frozenset[str]:
    """Every ``<stem>`` some file of the folder could be ``<stem>.<suffix>`` of (the text before any dot)."""
    stems = set()
    for name in siblings:
        if model_format(name) is not None:
            continue  # a model file is never a sidecar
        dot = name.find(".", 1)
        while dot > 0:
            stems.add(name[:dot])
            dot = name.find(".", dot + 1)
    return frozenset(stems)


class _Scan:
    """One run over a list of walked files: plan, read, decide, write, sweep, announce."""

    def __init__(
        self,
        options: ScanOptions,
        progress: ScanProgress,
        report: ScanReport,
        scopes: Sequence[Path],
        *,
        only_paths: list[str] | None = None,
    ) -> None:
        self.options, self.progress, self.report, self.scopes = options, progress, report, scopes
        self.only_paths = only_paths  # a one-file rescan: load just its adapter, not the catalogue
        self.done = 0
        self.total = 0
        self.ingest: Ingest | None = None
        self.stems: dict[int, frozenset[str]] = {}  # per folder listing: the stems its sidecars could belong to

    def run(self, files: list[WalkedFile], *, started: float) -> ScanReport:
        state = IngestState(
            index=Index.load(paths=self.only_paths),
            excluded_hashes=excluded_hashes(),
            walked={file.key for file in files},
            names=NameRegistry(preload=self.only_paths is None),
            now=timezone.now(),
            dry_run=self.options.dry_run,
            force_rehash=self.options.force_rehash,
            include_excluded=self.options.include_excluded,
        )
        self.ingest = Ingest(state)
        tasks = self.plan(files, load_rows(self.scopes))
        self.report.files_seen += len(files)
        self.total = len(tasks)
        self.progress.planned(files=len(tasks), bytes_to_hash=sum(task.size for task in tasks if task.needs_hash))
        try:
            self.execute(tasks)
            for item in self.ingest.sweep(self.scopes):
                self.report.add(item)
        finally:
            self.report.duration_seconds = time.monotonic() - started
            self.announce()
        return self.report

    # --- planning ------------------------------------------------------------------------------------

    def plan(self, files: list[WalkedFile], rows: dict[str, CacheRow]) -> list[FileTask]:
        """A task per file, ordered: files that have an adapter first (so in-place changes are known before the
        copies of their old content are judged), each group by path."""
        assert self.ingest is not None
        tasks = [self.task(file, rows.get(file.key)) for file in files]
        catalogued = self.ingest.index.by_path
        tasks.sort(key=lambda task: (task.path not in catalogued, task.path))
        return tasks

    def task(self, file: WalkedFile, row: CacheRow | None) -> FileTask:
        found = self.sidecars_of(file)
        fmt = model_format(file.key) or "safetensors"
        cached = (
            row is not None
            and not self.options.force_rehash
            and row.valid_for(file.stat, needs_header=fmt == "safetensors")
        )
        task = FileTask(file, row, cached, found, fingerprint(found))
        task.excluded = self.excluded_before_hashing(task)
        return task

    def sidecars_of(self, file: WalkedFile) -> tuple[SidecarFile, ...]:
        """``find_sidecars``, skipped when no file of the folder can be a sidecar of this one (most files)."""
        if file.siblings is None:
            return find_sidecars(file.path)
        stems = self.stems.get(id(file.siblings))
        if stems is None:
            stems = self.stems[id(file.siblings)] = sidecar_stems(file.siblings)
        return find_sidecars(file.path, file.siblings) if file_stem(file.key) in stems else ()

    def excluded_before_hashing(self, task: FileTask) -> bool:
        """An excluded path, or Lora-Manager's ``"exclude": true``, for a file without an adapter."""
        assert self.ingest is not None
        if self.options.include_excluded or task.path in self.ingest.index.by_path:
            return False
        if task.row is not None and task.row.excluded:
            return True
        lora_manager = [found for found in task.found if found.role == "lora_manager"]
        return bool(lora_manager) and read_sidecars(lora_manager).excluded

    # --- running -------------------------------------------------------------------------------------

    def execute(self, tasks: list[FileTask]) -> None:
        workers = self.options.workers or int(settings.LORAFORGE_SCAN_WORKERS)
        limit = header_limit_bytes()

        def work(task: FileTask) -> FileRead:
            return read_model_file(
                task.file.path, fmt=task.fmt, size=task.size, header_limit=limit, on_bytes=self.progress.bytes_read
            )

        buffer: list[tuple[FileTask, FileRead | OSError | None]] = []
        with Hasher(work, workers=workers) as hasher:
            hasher.schedule(task for task in tasks if task.needs_hash)
            for task in tasks:
                if self.progress.cancelled():
                    self.flush(buffer)
                    raise ScanCancelled(self.report)
                if buffer and not hasher.ready(task):
                    self.flush(buffer)  # about to wait for a hash: commit what is done first
                buffer.append((task, hasher.take(task) if task.needs_hash else None))
                if len(buffer) >= BATCH_SIZE:
                    self.flush(buffer)
            self.flush(buffer)

    def flush(self, buffer: list[tuple[FileTask, FileRead | OSError | None]]) -> None:
        """Settle the buffered files; the writes of the batch share one transaction, opened only when needed."""
        assert self.ingest is not None
        with ExitStack() as stack:
            in_transaction = self.options.dry_run
            for task, read in buffer:
                item = self.ingest.quick(task, read)
                if item is None:
                    if not in_transaction:
                        stack.enter_context(transaction.atomic())
                        in_transaction = True
                    item = self.slow(task, read)
                self.count(task, read, item)
        buffer.clear()

    def slow(self, task: FileTask, read: FileRead | OSError | None) -> ScanItem:
        """The file's writes in a savepoint: one file that cannot be stored (a name taken by a concurrent edit, an
        adapter deleted meanwhile, a value the database refuses) is an error item, never the end of the scan."""
        assert self.ingest is not None
        try:
            with nullcontext() if self.options.dry_run else transaction.atomic():
                return self.ingest.slow(task, read)
        except (OperationalError, InterfaceError):
            raise  # the database itself is unavailable: the scan fails
        except Exception as exc:
            logger.exception("Scan could not import %s", task.path)
            return scan_item(task.path, "error", None, [f"Could not import this file: {exc}"[:500]])

    def count(self, task: FileTask, read: FileRead | OSError | None, item: ScanItem) -> None:
        if isinstance(read, FileRead):
            self.report.hashed += 1
            self.report.bytes_hashed += read.bytes_read
        elif read is None and task.cached and not task.excluded:
            self.report.cached += 1
        self.report.add(item)
        self.done += 1
        self.progress.file_done(path=task.file.path, index=self.done, total=self.total)

    def announce(self) -> None:
        """``adapters_imported`` for the adapters created, changed, moved or updated (not after a dry run)."""
        if self.options.dry_run or not self.options.announce or self.ingest is None or not self.ingest.imported_ids:
            return
        adapter_ids = list(dict.fromkeys(self.ingest.imported_ids))
        for receiver, result in adapters_imported.send_robust(sender=Adapter, adapter_ids=adapter_ids):
            if isinstance(result, Exception):
                logger.error("adapters_imported receiver %r failed: %s", receiver, result)
