"""Acting on the identity table (SPEC 6.6.6): refresh, change, move, copy, create, and the end-of-scan sweep.

``quick()`` settles, without a query, the files a rescan finds as they were (the common case);
``slow()`` does the rest, inside the caller's transaction and one savepoint per file. With
``dry_run`` nothing is written, but the in-memory index changes exactly as the rows would, so the
statuses match a real run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from adapters.models import Adapter, HashStatus
from adapters.scanner.cache import ReadRow, clear_exclusions, known_hashes, store_read, touch
from adapters.scanner.identity import AdapterRef, Decision, Index, NameRegistry, decide
from adapters.scanner.ingest import (
    FileTask,
    changed_fields,
    file_exists,
    file_facts,
    import_fields,
    scan_item,
    snapshot,
)
from adapters.scanner.paths import sdnext_name_for
from adapters.scanner.reading import FileRead
from adapters.scanner.types import ScanItem
from adapters.scanner.walk import is_under, os_error_text

UPDATE_CHUNK = 500


@dataclass
class IngestState:
    index: Index
    excluded_hashes: set[str]
    walked: set[str]
    names: NameRegistry
    now: datetime
    dry_run: bool = False
    force_rehash: bool = False
    include_excluded: bool = False


class Ingest:
    def __init__(self, state: IngestState) -> None:
        self.state = state
        self.index = state.index
        self.dry_run = state.dry_run
        self.imported_ids: list[str] = []  # created, changed, moved or updated: for ``adapters_imported``

    # --- deciding -------------------------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        return path in self.state.walked or file_exists(path)

    def hash_excluded(self, sha256: str) -> bool:
        return not self.state.include_excluded and sha256 in self.state.excluded_hashes

    def quick(self, task: FileTask, read: FileRead | OSError | None) -> ScanItem | None:
        """The item of a file that needs no write at all, else None (and ``task.decision`` is set)."""
        if task.excluded:
            return scan_item(task.path, "excluded")
        if isinstance(read, OSError):
            return None
        sha256 = read.sha256 if read is not None else task.row.sha256 if task.row else None
        assert sha256 is not None
        task.decision = decide(self.index, task.path, sha256, excluded=self.hash_excluded, exists=self.exists)
        if read is not None:
            return None  # this scan read the file: its cache row must be written
        action, target = task.decision.action, task.decision.target
        if action == "refresh" and target is not None and self._as_cached(task, target):
            return scan_item(task.path, "unchanged", target.id)
        if action == "known_copy" and target is not None and task.row and task.row.adapter_id == target.id:
            return scan_item(task.path, "unchanged", target.id)
        if action == "excluded":
            return scan_item(task.path, "excluded")
        return None

    def _as_cached(self, task: FileTask, ref: AdapterRef) -> bool:
        row = task.row
        return (
            row is not None
            and not self.state.force_rehash
            and ref.sha256 == row.sha256
            and ref.hash_status == HashStatus.DONE
            and ref.missing_since is None
            and row.adapter_id == ref.id
            and row.sidecar_fingerprint == task.fingerprint
        )

    def slow(self, task: FileTask, read: FileRead | OSError | None) -> ScanItem:
        if isinstance(read, OSError):
            return self.unreadable(task, read)
        decision = task.decision
        assert decision is not None
        if decision.stale_owner is not None:
            self.forget_copy(decision.stale_owner, task.path)
        handlers: dict[str, Callable[[FileTask, FileRead | None, Decision], ScanItem]] = {
            "refresh": self.refresh,
            "changed": self.changed,
            "excluded": self.excluded,
            "move": self.move,
            "known_copy": self.known_copy,
            "duplicate": self.duplicate,
            "create": self.create,
        }
        return handlers[decision.action](task, read, decision)

    # --- the table's rows --------------------------------------------------------------------------

    def refresh(self, task: FileTask, read: FileRead | None, decision: Decision) -> ScanItem:
        ref = self._target(decision)
        adapter, before = self._load(ref)
        reread = (
            self.state.force_rehash
            or ref.sha256 is None
            or task.row is None
            or task.row.sidecar_fingerprint != task.fingerprint
        )
        warnings = self._import(adapter, task, read, reread=reread)
        adapter.missing_since = None
        status = "updated" if snapshot(adapter) != before else "unchanged"
        if status == "updated":
            self._save(adapter, before)
        self._reindex(ref, adapter)
        self._remember(task, read, adapter.id)
        return scan_item(task.path, status, ref.id, warnings)

    def changed(self, task: FileTask, read: FileRead | None, decision: Decision) -> ScanItem:
        ref = self._target(decision)
        adapter, before = self._load(ref)
        warnings = self._import(adapter, task, read, reread=True)
        adapter.missing_since = None
        adapter.duplicate_paths = self._still_copies(ref.duplicate_paths, adapter.sha256)
        self._save(adapter, before)
        self._reindex(ref, adapter)
        self._remember(task, read, adapter.id)
        return scan_item(task.path, "changed", ref.id, warnings)

    def move(self, task: FileTask, read: FileRead | None, decision: Decision) -> ScanItem:
        ref = self._target(decision)
        adapter, before = self._load(ref)
        adapter.file_path = task.path
        if "sdnext_name" not in (adapter.locked_fields or []):
            adapter.sdnext_name = sdnext_name_for(task.path)[:200]
        adapter.missing_since = None
        adapter.duplicate_paths = [path for path in ref.duplicate_paths if path != task.path]
        warnings = self._import(adapter, task, read, reread=True)
        self._save(adapter, before)
        self._reindex(ref, adapter)
        self._remember(task, read, adapter.id)
        return scan_item(task.path, "moved", ref.id, warnings)

    def known_copy(self, task: FileTask, read: FileRead | None, decision: Decision) -> ScanItem:
        owner = self._target(decision)
        self._remember(task, read, owner.id)
        return scan_item(task.path, "unchanged", owner.id)

    def duplicate(self, task: FileTask, read: FileRead | None, decision: Decision) -> ScanItem:
        owner = self._target(decision)
        copies = sorted({*owner.duplicate_paths, task.path})
        self._set_copies(owner, copies)
        self._remember(task, read, owner.id)
        header_error = file_facts(task, read).header.error
        return scan_item(task.path, "duplicate", owner.id, [header_error or ""])

    def create(self, task: FileTask, read: FileRead | None, decision: Decision) -> ScanItem:
        adapter = Adapter(file_path=task.path, sdnext_name=sdnext_name_for(task.path)[:200])
        warnings = self._import(adapter, task, read, reread=True, creating=True)
        self._save(adapter, None)
        sha256 = adapter.sha256
        if not self.dry_run and ((task.row and task.row.excluded) or sha256 in self.state.excluded_hashes):
            clear_exclusions(path=task.path, sha256=sha256)
        self.state.excluded_hashes.discard(sha256 or "")
        self.index.add(AdapterRef(adapter.id, task.path, sha256, adapter.hash_status, None, []))
        self._remember(task, read, adapter.id, clear_exclusion=True)
        return scan_item(task.path, "created", None if self.dry_run else adapter.id, warnings)

    def excluded(self, task: FileTask, read: FileRead | None, decision: Decision) -> ScanItem:
        self._remember(task, read, None)  # keep the hash: the next scan need not read the file again
        return scan_item(task.path, "excluded")

    def unreadable(self, task: FileTask, error: OSError) -> ScanItem:
        """An error item; an adapter at the path gets ``hash_status: "error"``; nothing is created."""
        ref = self.index.by_path.get(task.path)
        if ref is not None and ref.hash_status != HashStatus.ERROR:
            if not self.dry_run:
                Adapter.objects.filter(pk=ref.id).update(hash_status=HashStatus.ERROR, updated_at=self.state.now)
            ref.hash_status = HashStatus.ERROR
        return scan_item(task.path, "error", ref.id if ref else None, [os_error_text(error)])

    # --- the end of a scan ---------------------------------------------------------------------------

    def sweep(self, scopes: Sequence[Path]) -> list[ScanItem]:
        """Adapters under the scanned paths whose file is gone get ``missing_since``; vanished copies go."""
        texts = [str(scope) for scope in scopes]

        def vanished(path: str) -> bool:
            return path not in self.state.walked and any(is_under(path, s) for s in texts) and not file_exists(path)

        items, newly = [], []
        for ref in sorted(self.index.refs(), key=lambda ref: ref.file_path):
            copies = [path for path in ref.duplicate_paths if not vanished(path)]
            if copies != ref.duplicate_paths:
                self._set_copies(ref, copies)
            if vanished(ref.file_path):
                items.append(scan_item(ref.file_path, "missing", ref.id))
                if ref.missing_since is None:
                    newly.append(ref)
                    ref.missing_since = self.state.now
        if not self.dry_run:
            for start in range(0, len(newly), UPDATE_CHUNK):
                ids = [ref.id for ref in newly[start : start + UPDATE_CHUNK]]
                Adapter.objects.filter(pk__in=ids).update(missing_since=self.state.now, updated_at=self.state.now)
        return items

    # --- helpers ---------------------------------------------------------------------------------------

    @staticmethod
    def _target(decision: Decision) -> AdapterRef:
        assert decision.target is not None
        return decision.target

    def _load(self, ref: AdapterRef) -> tuple[Adapter, dict[str, Any]]:
        adapter = Adapter.objects.get(pk=ref.id)
        adapter.duplicate_paths = list(ref.duplicate_paths)  # the index is current, also in a dry run
        return adapter, snapshot(adapter)

    def _import(
        self, adapter: Adapter, task: FileTask, read: FileRead | None, *, reread: bool, creating: bool = False
    ) -> list[str]:
        facts = file_facts(task, read)
        found = task.found if reread else None
        return import_fields(adapter, facts, found, creating=creating, names=self.state.names)

    def _save(self, adapter: Adapter, before: dict[str, Any] | None) -> None:
        adapter.last_ingested_at = self.state.now
        if not self.dry_run:
            if before is None:
                adapter.save()
            else:
                adapter.save(update_fields=[*changed_fields(before, adapter), "last_ingested_at"])
        self.state.names.record(adapter, (before["name"], before["version"]) if before else None)
        self.imported_ids.append(str(adapter.pk))

    def _reindex(self, ref: AdapterRef, adapter: Adapter) -> None:
        self.index.replace(
            ref,
            file_path=adapter.file_path,
            sha256=adapter.sha256,
            hash_status=adapter.hash_status,
            missing_since=adapter.missing_since,
            duplicate_paths=list(adapter.duplicate_paths or []),
        )

    def _set_copies(self, ref: AdapterRef, copies: list[str]) -> None:
        if not self.dry_run:
            adapter = Adapter.objects.get(pk=ref.id)
            adapter.duplicate_paths = copies
            adapter.save(update_fields=["duplicate_paths"])
        self.index.replace(ref, duplicate_paths=copies)

    def forget_copy(self, owner: AdapterRef, path: str) -> None:
        """The path is listed as a copy of ``owner`` but no longer holds its content."""
        self._set_copies(owner, [copy for copy in owner.duplicate_paths if copy != path])

    def _still_copies(self, paths: Sequence[str], sha256: str | None) -> list[str]:
        """The copies of a file replaced in place that hold its new content (as far as the cache knows)."""
        if not paths:
            return []
        known = known_hashes(paths)
        return [path for path in paths if known.get(path) == sha256]

    def _remember(
        self, task: FileTask, read: FileRead | None, adapter_id: Any, *, clear_exclusion: bool = False
    ) -> None:
        if self.dry_run:
            return
        if read is not None:
            mtime_ns = task.file.stat.st_mtime_ns
            row = ReadRow(task.path, task.size, mtime_ns, read.sha256, read.header, task.fingerprint, adapter_id)
            store_read(row, self.state.now, excluded=False if clear_exclusion else None)
        elif task.row is not None and (
            task.row.adapter_id != adapter_id or task.row.sidecar_fingerprint != task.fingerprint
        ):
            touch(task.row.id, adapter_id=adapter_id, sidecar_fingerprint=task.fingerprint, now=self.state.now)
