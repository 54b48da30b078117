"""A read-only snapshot of the catalogue for scoring: one row per adapter in a fixed order, with its documents,
phrases, metadata and query-independent score terms, so a recommendation needs no per-adapter query.

``catalogue_load()`` reads every adapter; ``catalogue_update(previous)`` reads every row's columns too but builds
again only the rows whose columns changed (a signature per row), so a snapshot follows a few writes in milliseconds
per thousand adapters instead of a full load."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.utils import timezone

from adapters.models import Adapter
from loraforge.prepared import PreparedQuery
from recommendations.documents import SNAPSHOT_FIELDS, lexical_document, semantic_text, text_sha256
from recommendations.scoring import popularity_score, quality_score, recency_score
from recommendations.triggers import adapter_phrases

Runs = tuple[tuple[int, int], ...]  # ``(start, end)`` ranges of rows


@dataclass
class Catalogue:
    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    descriptions: list[str | None] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    semantic_hashes: list[str] = field(default_factory=list)
    phrases: list[list[str]] = field(default_factory=list)
    tag_sets: list[frozenset[str]] = field(default_factory=list)
    position: dict[str, int] = field(default_factory=dict)
    base_family: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    active: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    quality: np.ndarray = field(default_factory=lambda: np.zeros(0))
    popularity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    recency: np.ndarray = field(default_factory=lambda: np.zeros(0))
    _family_masks: dict[tuple[str, tuple[str, ...]], np.ndarray] = field(default_factory=dict, repr=False)
    _family_runs: dict[tuple[str, tuple[str, ...]], Runs] = field(default_factory=dict, repr=False)
    preference_rows: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, repr=False)  # engine's memo
    name_rank: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # position by lower-case name
    signatures: list[int] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list, repr=False)
    key_position: dict[Any, int] = field(default_factory=dict, repr=False)  # row by the id as the driver returns it

    def __len__(self) -> int:
        return len(self.ids)

    def family_mask(self, family: str, always: tuple[str, ...]) -> np.ndarray:
        """Rows of ``family`` or of one of the ``always`` families (computed once per family and snapshot)."""
        key = (family, always)
        mask = self._family_masks.get(key)
        if mask is None:
            mask = (self.base_family == family) | np.isin(self.base_family, always)
            self._family_masks[key] = mask
        return mask

    def family_runs(self, family: str, always: tuple[str, ...]) -> Runs:
        """``family_mask`` as ``(start, end)`` runs of consecutive rows: a run per family, since the snapshot groups
        rows by family (a snapshot that followed a family change may hold more until the next load)."""
        key = (family, always)
        runs = self._family_runs.get(key)
        if runs is None:
            edges = np.flatnonzero(np.diff(self.family_mask(family, always).astype(np.int8), prepend=0, append=0))
            runs = tuple(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))
            self._family_runs[key] = runs
        return runs


@dataclass(frozen=True)
class Entry:
    """One adapter's row of a snapshot, and the signature of the column values it was made from."""

    id: str
    key: Any  # the id as the database driver returns it
    signature: int
    name: str
    description: str | None
    metadata: dict[str, Any]
    document: str
    semantic_hash: str
    phrases: list[str]
    tag_set: frozenset[str]
    base_family: str
    active: bool
    quality: float
    popularity: float
    recency: float


@dataclass
class Update:
    """``catalogue``, a snapshot brought up to date from ``before``: ``unchanged[i]`` is the row of ``before`` that
    row ``i`` was copied from (the adapter's columns are unchanged), or -1 (new, or read again)."""

    before: Catalogue
    catalogue: Catalogue
    unchanged: np.ndarray
    removed: int = 0

    @classmethod
    def between(cls, before: Catalogue, catalogue: Catalogue) -> Update:
        """Two snapshots read independently (no row known to be copied)."""
        present = sum(adapter_id in before.position for adapter_id in catalogue.ids)
        return cls(before, catalogue, np.full(len(catalogue), -1, dtype=np.int64), removed=len(before) - present)

    @property
    def changed(self) -> int:
        """Rows read again (new or changed adapters) plus rows dropped (deleted adapters)."""
        return int((self.unchanged < 0).sum()) + self.removed

    def sources(self, value: Callable[[Catalogue, int], Any]) -> np.ndarray:
        """For each row, the row of ``before`` with the same adapter and an equal ``value(snapshot, row)`` (every
        unchanged row, and a changed row where ``value`` did not change), else -1."""
        sources = self.unchanged.copy()
        for row in np.flatnonzero(sources < 0):
            old = self.before.position.get(self.catalogue.ids[row])
            if old is not None and value(self.before, old) == value(self.catalogue, int(row)):
                sources[row] = old
        return sources


# Every adapter's snapshot columns, grouped by base family and ordered by id within it (stable across rebuilds), so
# that one family's rows are one run of rows: ``similar`` with ``same_base_only`` computes its products over those
# runs only. Compiled once and read without conversion: the signatures compare the driver's values, and only new or
# changed rows are converted.
_SNAPSHOT: PreparedQuery[Adapter] = PreparedQuery(
    lambda: Adapter.objects.order_by("base_family", "id").only(*SNAPSHOT_FIELDS)
)


def catalogue_load() -> Catalogue:
    """Every adapter, grouped by base family, ordered by id within it."""
    return _assemble(_entries(_SNAPSHOT.fetch(), timezone.now()))


def catalogue_update(before: Catalogue) -> Update:
    """The snapshot as the catalogue is now, copying the rows of ``before`` whose adapter did not change (one read
    of every row's columns, compared by signature; only new and changed rows are converted and scored again)."""
    fetched = _SNAPSHOT.fetch()
    at = _key_column()
    unchanged = np.full(len(fetched), -1, dtype=np.int64)
    fresh: list[tuple[Any, ...]] = []
    present = 0
    moved = False  # an adapter's row is not the one it had (its base family changed, or rows came or went)
    for row, values in enumerate(fetched):
        old = before.key_position.get(values[at])
        if old is None:
            fresh.append(values)
            continue
        present += 1
        moved = moved or old != row
        if before.signatures[old] == _signature(values):
            unchanged[row] = old
        else:
            fresh.append(values)
    made = _entries(fresh, timezone.now())
    if not moved and present == len(before) == len(fetched):  # the same adapters in the same rows: some replaced
        changed = dict(zip(np.flatnonzero(unchanged < 0).tolist(), made, strict=True))
        return Update(before, _patched(before, changed), unchanged)
    rest = iter(made)
    entries = [before.entries[old] if old >= 0 else next(rest) for old in unchanged.tolist()]
    return Update(before, _assemble(entries), unchanged, removed=len(before) - present)


def _key_column() -> int:
    return _SNAPSHOT.field_names().index("id")


def _signature(row: tuple[Any, ...]) -> int:
    """A 64-bit hash of the row's column values as the driver returned them (one process: the index is per process)."""
    try:
        return hash(row)
    except TypeError:  # a driver that decoded a JSON column into a dict
        return hash(repr(row))


def _entries(fetched: list[tuple[Any, ...]], now: Any) -> list[Entry]:
    at = _key_column()
    adapters = _SNAPSHOT.instances_from(fetched)
    return [
        _entry(adapter, values[at], _signature(values), now) for adapter, values in zip(adapters, fetched, strict=True)
    ]


def _entry(adapter: Adapter, key: Any, signature: int, now: Any) -> Entry:
    return Entry(
        id=str(adapter.pk),
        key=key,
        signature=signature,
        name=adapter.name,
        description=adapter.description,
        metadata=_metadata(adapter),
        document=lexical_document(adapter),
        semantic_hash=text_sha256(semantic_text(adapter)),
        phrases=adapter_phrases(
            triggers=adapter.triggers,
            trained_words=adapter.trained_words,
            activation_text=adapter.activation_text,
            header_metadata=adapter.header_metadata,
        ),
        tag_set=frozenset(str(tag).lower() for tag in adapter.tags or []),
        base_family=adapter.base_family,
        active=adapter.active,
        quality=quality_score(adapter.stats),
        popularity=popularity_score(adapter.stats),
        recency=recency_score(adapter.published_at, adapter.created_at, now),
    )


# The snapshot's per-row lists and arrays, and the entry attribute each holds.
_LISTS = (
    ("names", "name"), ("descriptions", "description"), ("metadata", "metadata"), ("documents", "document"),
    ("semantic_hashes", "semantic_hash"), ("phrases", "phrases"), ("tag_sets", "tag_set"), ("signatures", "signature"),
)  # fmt: skip
_ARRAYS = (
    ("base_family", "base_family", object), ("active", "active", bool), ("quality", "quality", np.float64),
    ("popularity", "popularity", np.float64), ("recency", "recency", np.float64),
)  # fmt: skip


def _assemble(entries: list[Entry]) -> Catalogue:
    catalogue = Catalogue(entries=entries)
    catalogue.ids = [entry.id for entry in entries]
    catalogue.position = {adapter_id: row for row, adapter_id in enumerate(catalogue.ids)}
    catalogue.key_position = {entry.key: row for row, entry in enumerate(entries)}
    for name, attribute in _LISTS:
        setattr(catalogue, name, [getattr(entry, attribute) for entry in entries])
    for name, attribute, dtype in _ARRAYS:
        setattr(catalogue, name, np.array([getattr(entry, attribute) for entry in entries], dtype=dtype))
    catalogue.name_rank = _name_rank(catalogue.names, catalogue.ids)
    return catalogue


def _patched(before: Catalogue, changed: dict[int, Entry]) -> Catalogue:
    """``before`` with the entries of some rows replaced (the same adapters in the same rows): its lists and arrays
    copied (a C-speed copy, not a loop over every entry) and the changed rows written."""
    catalogue = Catalogue(ids=before.ids, position=before.position, key_position=before.key_position)
    catalogue.entries = list(before.entries)
    for name, _attribute in _LISTS:
        setattr(catalogue, name, list(getattr(before, name)))
    for name, _attribute, _dtype in _ARRAYS:
        setattr(catalogue, name, getattr(before, name).copy())
    for row, entry in changed.items():
        catalogue.entries[row] = entry
        for name, attribute in _LISTS:
            getattr(catalogue, name)[row] = getattr(entry, attribute)
        for name, attribute, _dtype in _ARRAYS:
            getattr(catalogue, name)[row] = getattr(entry, attribute)
    renamed = any(before.names[row] != entry.name for row, entry in changed.items())
    catalogue.name_rank = _name_rank(catalogue.names, catalogue.ids) if renamed else before.name_rank
    return catalogue


def _name_rank(names: list[str], ids: list[str]) -> np.ndarray:
    """Each row's position by lower-case name, then id (ties never depend on the order of the rows)."""
    by_name = sorted(range(len(names)), key=lambda row: (names[row].lower(), ids[row]))
    rank = np.empty(len(by_name), dtype=np.int64)
    rank[by_name] = np.arange(len(by_name))
    return rank


def _metadata(adapter: Adapter) -> dict[str, Any]:
    return {
        "tags": list(adapter.tags or []),
        "author": adapter.author_username,
        "sd_version": adapter.sd_version,
        "base_model": adapter.base_model,
        "base_family": adapter.base_family,
        "nsfw_level": adapter.nsfw_level,
        "sdnext_name": adapter.sdnext_name,
        "active": adapter.active,
    }
