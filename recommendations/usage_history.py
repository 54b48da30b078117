"""The co-usage history kept in memory: every succeeded generation job of the window and its adapters, as a sparse
job x adapter matrix read in one query, plus the jobs changed since, and keyed by ``UsageState.version`` and the
window's first day.

A target's co-usage then costs a slice of the matrix (its jobs' rows) instead of a query over the links: for the
20 most used adapters of 100,000 jobs, about 2 ms against 30-70 ms. While jobs keep succeeding, a history catches up
from the log the triggers keep (``UsageChange``): it reads again only the jobs logged since its version, and counts
them from a small overlay (``Changes``) in place of their rows of the matrix. ``cousage.py`` decides when to load,
catch up or query; this module only loads, catches up and answers.

Exact by construction: the version is read before the rows, so a history never claims a version newer than what it
read, and a job read again is replaced whole, so reading a newer state of it than the version claims is harmless
(its next change is logged after that version and read again).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

import numpy as np
from django.db import connection

from deliveries.models import DeliveryJob, DeliveryJobAdapter, DeliveryKind
from loraforge.models.jobs import JobStatus
from recommendations.cousage_query import window_first_instant
from recommendations.models import UsageChange, UsageState

Key = tuple[int, date]
FETCH_ROWS = 20_000
CATCH_UP_MAX_ROWS = 20_000  # more rows logged since a history's version: it is loaded again instead


class State(NamedTuple):
    version: int
    pruned_through: int  # the log holds no change at this version or before


def usage_state() -> State | None:
    """The co-usage history's version and how far its log was pruned (None when the state row is missing, e.g. after
    ``flush``)."""
    with connection.cursor() as cursor:  # plain SQL: this runs on every recommendation
        cursor.execute(f"SELECT version, pruned_through FROM {UsageState._meta.db_table} WHERE id = 1")  # noqa: S608
        row = cursor.fetchone()
    return None if row is None else State(int(row[0]), int(row[1]))


def usage_version() -> int | None:
    state = usage_state()
    return None if state is None else state.version


def job_key(raw: Any) -> bytes:
    """A job id as the database returns it (a ``UUID`` on PostgreSQL, 32 hex digits on SQLite) as its 16 bytes."""
    return raw.bytes if isinstance(raw, uuid.UUID) else bytes.fromhex(raw)


@dataclass(frozen=True)
class Loaded:
    """What one load read: a matrix of jobs x adapters (1 per job and adapter), and each job's row, found through
    the jobs' ids sorted as 16-byte keys (1.6 MB at 100,000 jobs, where a dict of ids took about 20 MB)."""

    jobs: Any  # scipy CSR
    by_adapter: Any  # the same as CSC
    keys: np.ndarray  # the jobs' ids (``job_key``), sorted
    key_rows: np.ndarray  # the row of each of ``keys``

    def row_of(self, key: bytes) -> int | None:
        # Both ends of the key's run: numpy compares the "S16" keys as stored (an element read back loses its
        # trailing zero bytes, so comparing it with ``key`` in Python could miss)
        first, end = np.searchsorted(self.keys, key, side="left"), np.searchsorted(self.keys, key, side="right")
        return int(self.key_rows[first]) if end > first else None

    def columns_of(self, row: int) -> np.ndarray:
        return self.jobs.indices[self.jobs.indptr[row] : self.jobs.indptr[row + 1]]


@dataclass(frozen=True)
class Changes:
    """The jobs changed since the load: the loaded rows they replace, and their columns now (a job that no longer
    counts has none)."""

    dropped: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # sorted rows
    jobs: Mapping[bytes, np.ndarray] = field(default_factory=dict)  # job (``job_key``) -> its adapters' columns
    by_column: Mapping[int, frozenset[bytes]] = field(default_factory=dict)  # column -> the jobs of ``jobs`` with it

    def __len__(self) -> int:
        return len(self.dropped) + len(self.jobs)


@dataclass(frozen=True)
class UsageHistory:
    key: Key
    loaded: Loaded
    columns: dict[str, int]  # adapter id (canonical) -> column
    ids: list[str]  # column -> adapter id
    counts: np.ndarray  # n per column
    changes: Changes = field(default_factory=Changes)

    @property
    def version(self) -> int:
        return self.key[0]

    @property
    def links(self) -> int:
        return int(self.loaded.jobs.nnz) + sum(len(columns) for columns in self.changes.jobs.values())

    def partners_of(self, target: str) -> tuple[np.ndarray, np.ndarray, int]:
        """The columns of the adapters used with ``target``, in how many of its jobs each was (``n_ab``), and
        ``n_a``; empty when it was in none."""
        column = self.columns.get(target)
        if column is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 0
        together = np.zeros(len(self.ids), dtype=np.int64)
        n_a = 0
        loaded, changes = self.loaded, self.changes
        if column < loaded.by_adapter.shape[1]:
            mine = loaded.by_adapter.indices[loaded.by_adapter.indptr[column] : loaded.by_adapter.indptr[column + 1]]
            if len(changes.dropped):
                mine = mine[~np.isin(mine, changes.dropped)]
            starts, ends = loaded.jobs.indptr[mine], loaded.jobs.indptr[mine + 1]
            lengths = ends - starts
            # Every column index of those jobs' rows, gathered without a loop: each row's offsets from its start.
            offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            together += np.bincount(loaded.jobs.indices[np.repeat(starts, lengths) + offsets], minlength=len(self.ids))
            n_a += len(mine)
        changed = changes.by_column.get(column, ())
        if changed:
            columns = np.concatenate([changes.jobs[job] for job in changed])
            together += np.bincount(columns, minlength=len(self.ids))
            n_a += len(changed)
        together[column] = 0
        partners = np.flatnonzero(together)
        return partners, together[partners], n_a

    def with_jobs(self, version: int, changed: Iterable[bytes], now: Mapping[bytes, list[Any]]) -> UsageHistory:
        """This history at ``version``: each job of ``changed`` (``job_key``) replaced by its adapters in ``now``
        (absent: it no longer counts). Adapter ids as the database returns them."""
        columns, ids, counts = self.columns, self.ids, self.counts.copy()
        dropped = set(self.changes.dropped.tolist())
        jobs, by_column = dict(self.changes.jobs), dict(self.changes.by_column)
        for job in changed:
            before = jobs.pop(job, None)
            if before is not None:
                for column in before.tolist():
                    by_column[column] = by_column[column] - {job}
            elif (row := self.loaded.row_of(job)) is not None and row not in dropped:
                dropped.add(row)
                before = self.loaded.columns_of(row)
            if before is not None:
                counts[before] -= 1
            adapters = {str(uuid.UUID(str(raw))) for raw in now.get(job, ())}
            if not adapters:
                continue
            if not adapters <= columns.keys():  # adapters new to the history: copies, the old one stays whole
                if columns is self.columns:
                    columns, ids = dict(columns), list(ids)
                for adapter in sorted(adapters - columns.keys()):
                    columns[adapter] = len(ids)
                    ids.append(adapter)
                counts = np.concatenate([counts, np.zeros(len(ids) - len(counts), dtype=counts.dtype)])
            after = np.array(sorted(columns[adapter] for adapter in adapters), dtype=np.int64)
            jobs[job] = after
            counts[after] += 1
            for column in after.tolist():
                by_column[column] = by_column.get(column, frozenset()) | {job}
        return UsageHistory(
            key=(version, self.key[1]),
            loaded=self.loaded,
            columns=columns,
            ids=ids,
            counts=counts,
            changes=Changes(
                dropped=np.array(sorted(dropped), dtype=np.int64),
                jobs=jobs,
                by_column={column: found for column, found in by_column.items() if found},
            ),
        )


def _job_filter(first_day: date) -> list[Any]:
    return [DeliveryKind.GENERATION.value, JobStatus.SUCCEEDED.value, window_first_instant(first_day)]


def history_load(first_day: date) -> UsageHistory | None:
    """The history of the window starting on ``first_day``, keyed by the version read first (None when the
    version is unknown: no state row, so no trigger can be trusted)."""
    from scipy.sparse import csr_matrix

    version = usage_version()
    if version is None:
        return None
    links, jobs = DeliveryJobAdapter._meta.db_table, DeliveryJob._meta.db_table
    job_rows: dict[Any, int] = {}
    columns_raw: dict[Any, int] = {}
    job_parts: list[np.ndarray] = []
    adapter_parts: list[np.ndarray] = []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT l.job_id, l.adapter_id FROM {links} l JOIN {jobs} j ON j.id = l.job_id "  # noqa: S608
            "WHERE l.adapter_id IS NOT NULL AND j.kind = %s AND j.status = %s AND j.created_at >= %s",
            _job_filter(first_day),
        )
        while rows := cursor.fetchmany(FETCH_ROWS):  # in parts: the rows as Python objects never all at once
            job_parts.append(np.fromiter((job_rows.setdefault(job, len(job_rows)) for job, _ in rows), np.int64))
            adapter_parts.append(
                np.fromiter((columns_raw.setdefault(adapter, len(columns_raw)) for _, adapter in rows), np.int64)
            )
    keys = np.array([job_key(job) for job in job_rows], dtype="S16")
    order = np.argsort(keys, kind="stable")
    del job_rows
    job_index = np.concatenate(job_parts) if job_parts else np.zeros(0, dtype=np.int64)
    adapter_index = np.concatenate(adapter_parts) if adapter_parts else np.zeros(0, dtype=np.int64)
    ids = [str(uuid.UUID(str(raw))) for raw in columns_raw]
    matrix = csr_matrix(
        (np.ones(len(job_index), dtype=np.int32), (job_index, adapter_index)), shape=(len(keys), len(ids))
    )
    matrix.sum_duplicates()  # an adapter linked twice in one job: the job counts once
    matrix.data[:] = 1
    by_adapter = matrix.tocsc()
    return UsageHistory(
        key=(version, first_day),
        loaded=Loaded(jobs=matrix, by_adapter=by_adapter, keys=keys[order], key_rows=order.astype(np.int32)),
        columns={adapter_id: column for column, adapter_id in enumerate(ids)},
        ids=ids,
        counts=np.diff(by_adapter.indptr),
    )


def history_catch_up(history: UsageHistory, state: State) -> UsageHistory | None:
    """``history`` at ``state.version``, from the jobs logged since its own version, read again in one query; None
    when the log no longer holds them all (pruned) or holds too many (loading again costs less)."""
    if history.version < state.pruned_through:
        return None
    log, links, jobs = UsageChange._meta.db_table, DeliveryJobAdapter._meta.db_table, DeliveryJob._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.job_id, l.adapter_id FROM {log} c "  # noqa: S608
            f"LEFT JOIN {jobs} j ON j.id = c.job_id AND j.kind = %s AND j.status = %s AND j.created_at >= %s "
            f"LEFT JOIN {links} l ON l.job_id = j.id AND l.adapter_id IS NOT NULL "
            f"WHERE c.version > %s AND c.version <= %s LIMIT {CATCH_UP_MAX_ROWS + 1}",
            [*_job_filter(history.key[1]), history.version, state.version],
        )
        rows = cursor.fetchall()
    if len(rows) > CATCH_UP_MAX_ROWS:
        return None
    now: dict[Any, list[Any]] = {}
    for job, adapter in rows:
        found = now.setdefault(job_key(job), [])
        if adapter is not None:
            found.append(adapter)
    return history.with_jobs(state.version, now.keys(), now)
