"""One model file into one adapter: file facts, sidecars, field mapping and the name rule (SPEC 6.6.2-6.6.7).

Shared by the library scan, the one-file rescan and ``POST /adapters``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.models import Adapter, HashStatus
from adapters.scanner.basemodel import detect_base_model
from adapters.scanner.cache import CacheRow, cached_header
from adapters.scanner.headers import Header, derive_fields
from adapters.scanner.identity import Decision, NameRegistry
from adapters.scanner.inspect import FileFacts, header_field_values
from adapters.scanner.mapping import apply_imported, map_fields
from adapters.scanner.paths import file_stem, model_format
from adapters.scanner.reading import FileRead
from adapters.scanner.sidecars import SidecarFile, read_sidecars
from adapters.scanner.types import ScanItem
from adapters.scanner.walk import WalkedFile

# Columns that never make a refresh count as ``updated``: bookkeeping and derived search columns.
NOT_COMPARED = frozenset(
    {"last_ingested_at", "updated_at", "created_at", "tag_index", "search_index", "has_duplicates"}
)


@dataclass
class FileTask:
    """One walked model file on its way through the scan."""

    file: WalkedFile
    row: CacheRow | None  # its cache row, if any
    cached: bool  # the row is valid: hash and header come from it, the file is not opened
    found: tuple[SidecarFile, ...]
    fingerprint: str
    excluded: bool = False  # decided before hashing (excluded path, Lora-Manager "exclude": true)
    decision: Decision | None = None

    @property
    def path(self) -> str:
        return self.file.key

    @property
    def fmt(self) -> str:
        return model_format(self.path) or "safetensors"

    @property
    def size(self) -> int:
        return self.file.stat.st_size

    @property
    def needs_hash(self) -> bool:
        return not self.excluded and not self.cached


def file_facts(task: FileTask, read: FileRead | None) -> FileFacts:
    """What the file says, from this scan's read or from its valid cache row."""
    if read is not None:
        sha256, header = read.sha256, read.header
    else:
        assert task.row is not None
        sha256 = task.row.sha256
        header = cached_header(task.row.id) if task.fmt == "safetensors" else Header(metadata=None)
    return make_facts(task.file, task.fmt, sha256, header)


def make_facts(file: WalkedFile, fmt: str, sha256: str | None, header: Header) -> FileFacts:
    return FileFacts(
        path=file.path,
        format=fmt,
        size=file.stat.st_size,
        mtime_ns=file.stat.st_mtime_ns,
        header=header,
        fields=derive_fields(header.metadata),
        base=detect_base_model(metadata=header.metadata, file_name=file.path.name),
        sha256=sha256,
    )


def import_fields(
    adapter: Adapter,
    facts: FileFacts,
    found: Sequence[SidecarFile] | None,
    *,
    creating: bool,
    names: NameRegistry | None,
) -> list[str]:
    """File facts always; with ``found``, sidecars read and mapped (SPEC 6.6.7 rules); the name made unique with
    ``names`` unless None (the caller names the adapter). Returns the warnings."""
    for name, value in header_field_values(facts).items():
        setattr(adapter, name, value)
    if facts.sha256:
        adapter.sha256, adapter.autov2, adapter.hash_status = facts.sha256, facts.sha256[:10], HashStatus.DONE
    warnings = [facts.header.error] if facts.header.error else []
    if found is None:
        return warnings
    sidecars = read_sidecars(found)
    imported = map_fields(
        model_path=facts.path,
        sidecars=sidecars,
        header=facts.header.metadata,
        header_fields=facts.fields,
        sha256=facts.sha256,
        autov2=facts.sha256[:10] if facts.sha256 else None,
        autov3=facts.fields.autov3,
    )
    previous = (adapter.name, adapter.version)
    changed = apply_imported(adapter, imported, creating=creating)
    warnings.extend(imported.warnings)
    if names is not None and (creating or changed & {"name", "version"}):
        note = _free_name(adapter, facts, names, previous=None if creating else previous)
        if note:
            warnings.append(note)
    return warnings


def _free_name(
    adapter: Adapter, facts: FileFacts, names: NameRegistry, *, previous: tuple[str, str | None] | None
) -> str | None:
    """The collision rule of SPEC 6.6.6; a locked name is never renamed (its version change is undone instead)."""
    if previous is not None and "name" in (adapter.locked_fields or []):
        if names.holder(adapter.name, adapter.version) not in (None, adapter.id):
            adapter.version = previous[1]
        return None
    note = names.resolve(adapter, stem=file_stem(facts.path), sha256=facts.sha256)
    if previous is not None and adapter.name == previous[0]:
        return None  # the name it already had: nothing new to tell
    return note


def snapshot(adapter: Adapter) -> dict[str, Any]:
    return {
        field.attname: getattr(adapter, field.attname)
        for field in Adapter._meta.concrete_fields
        if field.attname not in NOT_COMPARED
    }


def changed_fields(before: dict[str, Any], adapter: Adapter) -> list[str]:
    """The fields a scan changed since ``snapshot``: it saves only those, so a curator's edit that lands between
    the scan's read of the row and its write is never overwritten with the value it read."""
    after = snapshot(adapter)
    return [name for name, value in before.items() if after[name] != value]


def scan_item(path: str, status: str, adapter_id: Any = None, warnings: Iterable[str] = ()) -> ScanItem:
    detail = "; ".join(dict.fromkeys(warning for warning in warnings if warning)) or None
    return ScanItem(path=path, status=status, adapter_id=str(adapter_id) if adapter_id else None, detail=detail)


def file_exists(path: str) -> bool:
    return os.path.exists(path)
