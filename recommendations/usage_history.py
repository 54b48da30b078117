"""The co-usage history kept in memory: every succeeded generation job of the window and its adapters, as a sparse
job x adapter matrix, read in one query and keyed by ``UsageState.version`` and the window's first day.

A target's co-usage then costs a slice of the matrix (its jobs' rows) instead of a query over the links: for the
20 most used adapters of 100,000 jobs, about 2 ms against 30-70 ms. ``cousage.py`` decides when to use it; this
module only loads and answers. Exact by construction: the version is read before the links, so a history never
claims a version newer than what it read (a write in between makes the next request load again).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from django.db import connection

from deliveries.models import DeliveryJob, DeliveryJobAdapter, DeliveryKind
from loraforge.models.jobs import JobStatus
from recommendations.cousage_query import window_first_instant
from recommendations.models import UsageState

Key = tuple[int, date]
FETCH_ROWS = 20_000


def usage_version() -> int | None:
    """The co-usage history's version (None when the state row is missing, e.g. after ``flush``)."""
    with connection.cursor() as cursor:  # plain SQL: this runs on every recommendation
        cursor.execute(f"SELECT version FROM {UsageState._meta.db_table} WHERE id = 1")  # noqa: S608
        row = cursor.fetchone()
    return None if row is None else int(row[0])


@dataclass(frozen=True)
class UsageHistory:
    key: Key
    columns: dict[str, int]  # adapter id (canonical) -> column
    ids: list[str]  # column -> adapter id
    jobs: Any  # scipy CSR, jobs x adapters, 1 per (job, adapter)
    by_adapter: Any  # the same as CSC
    counts: np.ndarray  # n per column

    @property
    def links(self) -> int:
        return int(self.jobs.nnz)

    def partners_of(self, target: str) -> tuple[np.ndarray, np.ndarray, int]:
        """The columns of the adapters used with ``target``, in how many of its jobs each was (``n_ab``), and
        ``n_a``; empty when it was in none."""
        column = self.columns.get(target)
        if column is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 0
        mine = self.by_adapter.indices[self.by_adapter.indptr[column] : self.by_adapter.indptr[column + 1]]
        starts, ends = self.jobs.indptr[mine], self.jobs.indptr[mine + 1]
        lengths = ends - starts
        # Every column index of those jobs' rows, gathered without a loop: each row's offsets from its start.
        offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        together = np.bincount(self.jobs.indices[np.repeat(starts, lengths) + offsets], minlength=len(self.ids))
        together[column] = 0
        partners = np.flatnonzero(together)
        return partners, together[partners], len(mine)


def history_load(first_day: date) -> UsageHistory | None:
    """The history of the window starting on ``first_day``, keyed by the version read first (None when the
    version is unknown: no state row, so no trigger can be trusted)."""
    from scipy.sparse import csr_matrix

    version = usage_version()
    if version is None:
        return None
    links, jobs = DeliveryJobAdapter._meta.db_table, DeliveryJob._meta.db_table
    start = window_first_instant(first_day)
    job_rows: dict[Any, int] = {}
    columns_raw: dict[Any, int] = {}
    job_parts: list[np.ndarray] = []
    adapter_parts: list[np.ndarray] = []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT l.job_id, l.adapter_id FROM {links} l JOIN {jobs} j ON j.id = l.job_id "  # noqa: S608
            "WHERE l.adapter_id IS NOT NULL AND j.kind = %s AND j.status = %s AND j.created_at >= %s",
            [DeliveryKind.GENERATION.value, JobStatus.SUCCEEDED.value, start],
        )
        while rows := cursor.fetchmany(FETCH_ROWS):  # in parts: the rows as Python objects never all at once
            job_parts.append(np.fromiter((job_rows.setdefault(job, len(job_rows)) for job, _ in rows), np.int64))
            adapter_parts.append(
                np.fromiter((columns_raw.setdefault(adapter, len(columns_raw)) for _, adapter in rows), np.int64)
            )
    job_index = np.concatenate(job_parts) if job_parts else np.zeros(0, dtype=np.int64)
    adapter_index = np.concatenate(adapter_parts) if adapter_parts else np.zeros(0, dtype=np.int64)
    ids = [str(uuid.UUID(str(raw))) for raw in columns_raw]
    matrix = csr_matrix(
        (np.ones(len(job_index), dtype=np.int32), (job_index, adapter_index)), shape=(len(job_rows), len(ids))
    )
    matrix.sum_duplicates()  # an adapter linked twice in one job: the job counts once
    matrix.data[:] = 1
    by_adapter = matrix.tocsc()
    return UsageHistory(
        key=(version, first_day),
        columns={adapter_id: column for column, adapter_id in enumerate(ids)},
        ids=ids,
        jobs=matrix,
        by_adapter=by_adapter,
        counts=np.diff(by_adapter.indptr),
    )
