"""The scan cache (SPEC 6.6.3): ``ScannedFile`` rows loaded in bulk, validity, sidecar fingerprints, writes.

A row is valid for a file iff its ``size`` and ``mtime_ns`` equal the file's ``stat()`` and it holds a
hash (and, for safetensors, the header outcome): then neither the hash nor the header is recomputed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import BooleanField, ExpressionWrapper, Q

from adapters.models import ScannedFile
from adapters.scanner.headers import Header
from adapters.scanner.sidecars import SidecarFile
from adapters.scanner.walk import is_under
from loraforge.inserts import CompiledInsert, insert_compiled

ROW_FIELDS = ("id", "path", "size", "mtime_ns", "sha256", "excluded", "adapter_id", "sidecar_fingerprint")


@dataclass(frozen=True)
class CacheRow:
    """A ``ScannedFile`` row without its (possibly large) header JSON."""

    id: int
    path: str
    size: int
    mtime_ns: int
    sha256: str | None
    excluded: bool
    adapter_id: UUID | None
    sidecar_fingerprint: str | None
    has_header: bool

    def valid_for(self, info: os.stat_result, *, needs_header: bool) -> bool:
        return (
            bool(self.sha256)
            and self.size == info.st_size
            and self.mtime_ns == info.st_mtime_ns
            and (self.has_header or not needs_header)
        )


def scope_filter(scopes: Sequence[Path]) -> Q:
    condition = Q(pk__in=[])
    for scope in scopes:
        text = str(scope)
        condition |= Q(path=text) | Q(path__startswith=text.rstrip(os.sep) + os.sep)
    return condition


def _rows(condition: Q) -> Iterable[CacheRow]:
    has_header = ExpressionWrapper(Q(header__isnull=False) | Q(header_error__isnull=False), output_field=BooleanField())
    query = ScannedFile.objects.filter(condition).order_by().annotate(has_header=has_header)
    return (CacheRow(*values) for values in query.values_list(*ROW_FIELDS, "has_header"))


def load_rows(scopes: Sequence[Path]) -> dict[str, CacheRow]:
    """Every cache row under the scanned paths, by path, in one query."""
    texts = [str(scope) for scope in scopes]
    # LIKE ignores case on SQLite: rows outside the scopes by case are left out here
    return {row.path: row for row in _rows(scope_filter(scopes)) if any(is_under(row.path, text) for text in texts)}


def rows_of(paths: Iterable[str]) -> dict[str, CacheRow]:
    """The cache rows of exactly these paths, by path, in one query (an archive's page of LoRA files)."""
    return {row.path: row for row in _rows(Q(path__in=list(paths)))}


def excluded_hashes() -> set[str]:
    hashes = ScannedFile.objects.filter(excluded=True, sha256__isnull=False).values_list("sha256", flat=True)
    return {sha256 for sha256 in hashes if sha256}


def cached_header(row_id: int) -> Header:
    header, error = ScannedFile.objects.filter(pk=row_id).values_list("header", "header_error").get()
    return Header(metadata=header, error=error)


def fingerprint(found: Iterable[SidecarFile]) -> str:
    """A digest of the sidecar and preview files next to a model file: any change re-reads them."""
    text = "\n".join(f"{item.role}\0{item.path}\0{item.size}\0{item.mtime_ns}" for item in found)
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class ReadRow:
    """The cache row of a file whose content was read by this scan."""

    path: str
    size: int
    mtime_ns: int
    sha256: str | None
    header: Header
    sidecar_fingerprint: str
    adapter_id: Any


def store_read(row: ReadRow, now: datetime, *, excluded: bool | None = None) -> None:
    """Insert or update the row of a file that was read; ``excluded`` is kept unless given."""
    read_row_insert(row, now, excluded=excluded).execute()


def read_row_insert(row: ReadRow, now: datetime, *, excluded: bool | None = None) -> CompiledInsert:
    """``store_read`` compiled, to run later (inside a write transaction that should only execute)."""
    fields = ["size", "mtime_ns", "sha256", "header", "header_error", "adapter", "sidecar_fingerprint", "last_seen_at"]
    scanned = ScannedFile(
        path=row.path,
        size=row.size,
        mtime_ns=row.mtime_ns,
        sha256=row.sha256,
        header=row.header.metadata,
        header_error=row.header.error,
        adapter_id=row.adapter_id,
        sidecar_fingerprint=row.sidecar_fingerprint,
        last_seen_at=now,
        excluded=bool(excluded),
    )
    return insert_compiled(
        scanned, unique_fields=["path"], update_fields=[*fields, "excluded"] if excluded is not None else fields
    )


def touch(row_id: int, *, adapter_id: Any, sidecar_fingerprint: str, now: datetime) -> None:
    """A valid row whose file was not read: record its adapter and sidecar fingerprint."""
    ScannedFile.objects.filter(pk=row_id).update(
        adapter_id=adapter_id, sidecar_fingerprint=sidecar_fingerprint, last_seen_at=now
    )


_TABLE = ScannedFile._meta.db_table
# Plain SQL: every create runs it, and compiling the ORM's update cost several times what the database takes.
_LIFT_PATH = f"UPDATE {_TABLE} SET excluded = %s WHERE excluded = %s AND path = %s"  # noqa: S608 - no user input
_LIFT_PATH_OR_HASH = f"UPDATE {_TABLE} SET excluded = %s WHERE excluded = %s AND (path = %s OR sha256 = %s)"  # noqa: S608


def clear_exclusions(*, path: str, sha256: str | None) -> None:
    """Creating an adapter lifts any exclusion of its path and of its content hash (SPEC 6.6.6)."""
    with connection.cursor() as cursor:
        if sha256:
            cursor.execute(_LIFT_PATH_OR_HASH, [False, True, path, sha256])
        else:
            cursor.execute(_LIFT_PATH, [False, True, path])


def known_hashes(paths: Sequence[str]) -> dict[str, str | None]:
    return dict(ScannedFile.objects.filter(path__in=list(paths)).values_list("path", "sha256"))
