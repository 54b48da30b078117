"""Identity by content hash (SPEC 6.6.6): what the catalogue knows, and which row of the table applies.

The scan decides from an in-memory index of the adapters (loaded in one query, kept current as the
scan writes), so a dry run decides exactly like a real one and an unchanged file costs no query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from adapters.models import Adapter
from loraforge.prepared import PreparedQuery

NAME_MAX_LENGTH = 255


@dataclass
class AdapterRef:
    id: UUID
    file_path: str
    sha256: str | None
    hash_status: str
    missing_since: datetime | None
    duplicate_paths: list[str] = field(default_factory=list)


class Index:
    """Adapters by path, by content hash and by known duplicate copy."""

    def __init__(self, refs: Iterable[AdapterRef] = ()) -> None:
        self.by_id: dict[UUID, AdapterRef] = {}
        self.by_path: dict[str, AdapterRef] = {}
        self.by_sha: dict[str, list[AdapterRef]] = {}
        self.dup_owner: dict[str, AdapterRef] = {}
        for ref in refs:
            self.add(ref)

    @classmethod
    def load(cls, *, paths: list[str] | None = None) -> Index:
        """Every adapter (or only those at ``paths``), three narrow columns sets, no ordering."""
        query = Adapter.objects.order_by()
        if paths is not None:
            query = query.filter(file_path__in=paths)
        rows = query.values_list("id", "file_path", "sha256", "hash_status", "missing_since")
        refs = {row[0]: AdapterRef(*row) for row in rows}
        with_copies = query.filter(has_duplicates=True).values_list("id", "duplicate_paths")
        for adapter_id, duplicate_paths in with_copies:
            if adapter_id in refs:
                refs[adapter_id].duplicate_paths = list(duplicate_paths or [])
        return cls(refs.values())

    def add(self, ref: AdapterRef) -> None:
        self.by_id[ref.id] = ref
        self.by_path[ref.file_path] = ref
        if ref.sha256:
            self.by_sha.setdefault(ref.sha256, []).append(ref)
        for path in ref.duplicate_paths:
            self.dup_owner[path] = ref

    def remove(self, ref: AdapterRef) -> None:
        self.by_id.pop(ref.id, None)
        if self.by_path.get(ref.file_path) is ref:
            del self.by_path[ref.file_path]
        if ref.sha256 and ref.sha256 in self.by_sha:
            self.by_sha[ref.sha256] = [other for other in self.by_sha[ref.sha256] if other is not ref]
        for path in ref.duplicate_paths:
            if self.dup_owner.get(path) is ref:
                del self.dup_owner[path]

    def replace(self, ref: AdapterRef, **changes: object) -> None:
        """Change indexed values of ``ref`` (file_path, sha256, duplicate_paths, ...) and re-index it."""
        self.remove(ref)
        for name, value in changes.items():
            setattr(ref, name, value)
        self.add(ref)

    def refs(self) -> list[AdapterRef]:
        return list(self.by_id.values())


@dataclass(frozen=True)
class Decision:
    action: str  # refresh | changed | excluded | move | known_copy | duplicate | create
    target: AdapterRef | None = None
    stale_owner: AdapterRef | None = None  # lists this path as a copy, but its hash differs now


def decide(
    index: Index,
    path: str,
    sha256: str,
    *,
    excluded: Callable[[str], bool],
    exists: Callable[[str], bool],
) -> Decision:
    """The first matching row of the identity table for a model file whose hash is known."""
    here = index.by_path.get(path)
    if here is not None:
        return Decision("refresh" if here.sha256 in (None, sha256) else "changed", here)
    if excluded(sha256):
        return Decision("excluded")
    owner = index.dup_owner.get(path)
    stale = owner if owner is not None and owner.sha256 != sha256 else None
    same = index.by_sha.get(sha256, [])
    gone = next((ref for ref in same if not exists(ref.file_path)), None)
    if gone is not None:
        return Decision("move", gone, stale)
    if owner is not None and stale is None:
        return Decision("known_copy", owner)
    if same:
        return Decision("duplicate", same[0], stale)
    return Decision("create", None, stale)


_NAME_ROWS: PreparedQuery[Adapter] = PreparedQuery(
    lambda name: Adapter.objects.order_by().filter(name=name).values_list("id", "version"), "name"
)


def name_holder(name: str, version: str | None, *, exclude_id: UUID | None = None) -> UUID | None:
    """The adapter that holds (name, version) in the database (a missing version and "" are the same), if any.
    Rows of the name are compared here: a name has one or a few, and an OR over the version costs more to compile
    than to read."""
    rows = _NAME_ROWS.rows(name)
    held = ((row_id, row_version or "") for row_id, row_version in rows if row_id != exclude_id)
    return next((row_id for row_id, row_version in held if row_version == (version or "")), None)


class NameRegistry:
    """Who holds each (name, version): preloaded once for a library scan, else asked of the database."""

    def __init__(self, *, preload: bool) -> None:
        self.preload = preload
        self.holders: dict[tuple[str, str], UUID] | None = None

    def holder(self, name: str, version: str | None) -> UUID | None:
        if not self.preload:
            return name_holder(name, version)
        if self.holders is None:
            rows = Adapter.objects.order_by().values_list("name", "version", "id")
            self.holders = {(name, version or ""): adapter_id for name, version, adapter_id in rows}
        return self.holders.get((name, version or ""))

    def resolve(self, adapter: Adapter, *, stem: str, sha256: str | None) -> str | None:
        """Give the adapter a free name: ``name``, ``name (stem)``, ``name (sha256[:8])``; the warning or None."""
        wanted = adapter.name
        for candidate in name_candidates(wanted, stem, sha256):
            holder = self.holder(candidate, adapter.version)
            if holder is None or holder == adapter.id:
                adapter.name = candidate
                return None if candidate == wanted else f"Name already used; stored as '{candidate}'"
        raise AssertionError("unreachable: the numbered candidates never end")

    def record(self, adapter: Adapter, previous: tuple[str, str | None] | None) -> None:
        """The adapter was saved under its current name (after ``previous``)."""
        if self.holders is None:
            return
        if previous is not None and self.holders.get((previous[0], previous[1] or "")) == adapter.id:
            del self.holders[(previous[0], previous[1] or "")]
        self.holders[(adapter.name, adapter.version or "")] = adapter.id


def name_candidates(name: str, stem: str, sha256: str | None) -> Iterable[str]:
    yield name
    yield _suffixed(name, f" ({stem})")
    if sha256:
        yield _suffixed(name, f" ({sha256[:8]})")
    number = 2
    while True:
        yield _suffixed(name, f" ({stem}) {number}")
        number += 1


def _suffixed(name: str, suffix: str) -> str:
    suffix = suffix[-NAME_MAX_LENGTH // 2 :]
    return name[: NAME_MAX_LENGTH - len(suffix)].rstrip() + suffix
