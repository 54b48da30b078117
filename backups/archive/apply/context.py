"""What one application of an archive shares: the open archive, the mode, the clock, the report, the staged files
(SPEC 6.10.3), and the two low-level writes every part uses (raw batched inserts, staged file placement)."""

from __future__ import annotations

import gc
import logging
import os
import shutil
import uuid
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import connection, models

from backups.archive.apply.fast import RowInserter
from backups.archive.format import INVALID_RECORD, ArchiveError
from backups.archive.progress import ArchiveProgress, NoProgress
from backups.archive.reader import COPY_CHUNK, ValidatedArchive, json_loads
from backups.archive.records import RecordError

logger = logging.getLogger("loraforge.backups")

MERGE, REPLACE, DRY_RUN = "merge", "replace", "dry-run"
MODES = (MERGE, REPLACE, DRY_RUN)
BATCH = 1000


def invalid_record(kind: str, member: str, field_name: str, message: str) -> ArchiveError:
    return ArchiveError(INVALID_RECORD.format(kind=kind, member=member, field=field_name, message=message))


def record_error(kind: str, member: str, exc: RecordError) -> ArchiveError:
    return invalid_record(kind, member, exc.field, exc.message)


@dataclass
class ApplyContext:
    archive: ValidatedArchive
    zip: zipfile.ZipFile
    mode: str
    now: datetime
    staging: Path
    warnings: list[str] = field(default_factory=list)
    parts: dict[str, int] = field(default_factory=dict)
    placements: list[tuple[Path, Path]] = field(default_factory=list)  # (staged, final), moved after commit
    inserters: dict[Any, RowInserter] = field(default_factory=dict)
    progress: ArchiveProgress = field(default_factory=NoProgress)
    _staged: int = 0

    @property
    def dry_run(self) -> bool:
        return self.mode == DRY_RUN

    @property
    def replace(self) -> bool:
        return self.mode == REPLACE

    def count(self, part: str, n: int = 1) -> None:
        self.parts[part] = self.parts.get(part, 0) + n

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def read_json(self, member: str) -> Any:
        try:
            return json_loads(self.zip.read(member))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ArchiveError(f"Invalid JSON in {member}") from exc

    def jsonl(self, member: str) -> Iterator[tuple[int, Any]]:
        if self.archive.has(member):
            yield from self.archive.jsonl(member, opened=self.zip)

    def stage(self, member: str, final: Path) -> None:
        """Copy ``member`` into the staging folder now; it is moved to ``final`` once the transaction committed."""
        self.staging.mkdir(parents=True, exist_ok=True)
        self._staged += 1
        staged = self.staging / f"{self._staged:08d}"
        with self.zip.open(member) as source, staged.open("xb") as sink:
            while chunk := source.read(COPY_CHUNK):
                sink.write(chunk)
                self.progress.advance(len(chunk), member)
        self.placements.append((staged, final))


def batched(items: Iterable[Any], size: int = BATCH) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def insert(context: ApplyContext, model: type[models.Model], rows: Sequence[Mapping[str, Any]], **kwargs: Any) -> int:
    """Plain INSERTs of value dicts (see ``RowInserter``), one inserter per model and apply."""
    key = (model, tuple(sorted(kwargs.get("without", ()))))
    inserter = context.inserters.get(key)
    if inserter is None:
        inserter = context.inserters[key] = RowInserter(model, now=context.now, **kwargs)
    return inserter.insert(rows)


def place(staged: Path, final: Path) -> bool:
    """Move a staged file to ``final`` without ever overwriting: a hard link fails when ``final`` exists; across
    file systems the copy goes to a ``.part`` beside ``final`` first. False when ``final`` appeared meanwhile."""
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(staged, final)
    except FileExistsError:
        return False
    except OSError:
        part = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.part")
        shutil.copyfile(staged, part)
        try:
            os.link(part, final)
        except FileExistsError:
            return False
        finally:
            part.unlink(missing_ok=True)
    staged.unlink(missing_ok=True)
    return True


def place_all(context: ApplyContext) -> None:
    for staged, final in context.placements:
        if not place(staged, final):
            context.warn(f"Not overwriting existing file: {final}")


def staging_remove(context: ApplyContext) -> None:
    shutil.rmtree(context.staging, ignore_errors=True)


SQLITE_CACHE_KIB = 128 * 1024
GC_YOUNG_THRESHOLD = 50_000


@contextmanager
def fewer_collections() -> Iterator[None]:
    """The cyclic garbage collector's youngest generation collected every 50,000 allocations instead of every 700
    while an archive is applied: a restore allocates millions of short-lived dicts and tuples, none of them in a
    cycle, and each collection also walked what the plan keeps (a million-job SQLite restore: 112 s -> 97 s).
    Process-wide while it lasts; the previous thresholds come back after."""
    previous = gc.get_threshold()
    gc.set_threshold(max(previous[0], GC_YOUNG_THRESHOLD), *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)


@contextmanager
def bulk_writes() -> Iterator[None]:
    """A larger SQLite page cache while a restore writes (random UUID keys into large indexes otherwise re-read
    pages from disk for most rows: 35 s -> 20 s for 100,000 jobs); the connection's setting is restored after."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        previous = int(cursor.fetchone()[0])
        cursor.execute(f"PRAGMA cache_size = {-SQLITE_CACHE_KIB}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {previous}")


@contextmanager
def indexes_suspended(*tables: type[models.Model]) -> Iterator[None]:
    """SQLite, inside the caller's transaction: the plain (non-unique) indexes of ``tables`` are dropped while a bulk
    load runs and created again from their own SQL at the end, each in one sorted pass instead of a random B-tree
    insert per row; unique indexes stay, so constraints are checked as rows arrive. DDL is transactional in SQLite:
    a failure rolls the drop back with the rows, and readers keep their snapshot with its indexes (WAL). Elsewhere
    it does nothing: PostgreSQL's ``DROP INDEX`` would lock readers out until the restore commits."""
    if connection.vendor != "sqlite":
        yield
        return
    if not connection.in_atomic_block:
        raise RuntimeError("indexes_suspended() runs inside a transaction")
    names = [model._meta.db_table for model in tables]
    with connection.cursor() as cursor:
        marks = ", ".join(["%s"] * len(names))
        cursor.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "  # noqa: S608 - placeholders
            f"AND sql NOT LIKE 'CREATE UNIQUE%%' AND tbl_name IN ({marks}) ORDER BY name",
            names,
        )
        indexes = cursor.fetchall()
        for name, _sql in indexes:
            cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
    yield
    with connection.cursor() as cursor:
        for _name, sql in indexes:
            cursor.execute(sql)
