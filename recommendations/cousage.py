"""Co-usage (SPEC 6.7.2): ``n_ab / sqrt(n_a*n_b)`` over the succeeded generation jobs of the last 180 days, from
the jobs' adapter links: for the target of similar and works-well-with, or for-prompt's active adapters together.

Answered from the history kept in memory when it is current or can catch up from the triggers' log
(``usage_history.py``), else by one query (``cousage_query.py``). The window starts at the beginning of a UTC day,
the jobs created on or after the day 180 days ago, so that per-day counts can be summed (docs/DECISIONS.md).
"""

from __future__ import annotations

import logging
import math
import threading
import time as time_module
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from deliveries.models import DeliveryJobAdapter
from recommendations.cousage_query import Row
from recommendations.cousage_query import co_usage_rows as _query
from recommendations.scoring import CO_USAGE_DAYS
from recommendations.usage_history import UsageHistory, history_catch_up, history_load, usage_state, usage_version

__all__ = [
    "CoUsage", "Partners", "co_usage_of", "co_usage_with", "history_current", "history_prepare", "history_reset",
    "usage_version",
]  # fmt: skip

logger = logging.getLogger("loraforge.recommendations")


class CoUsage(NamedTuple):
    score: float
    jobs: int  # n_ab: succeeded jobs that used both


class Partners(Mapping[str, CoUsage]):
    """The adapters used with one target, as arrays: partner ``i`` is ``source[columns[i]]`` (the kept history's
    adapter ids, shared by every target; or a query's own list), with co-usage ``scores[i]``, in ``jobs[i]`` of the
    target's jobs. A popular target has thousands of partners on every request: a dict of one ``CoUsage`` per
    partner took 3 ms to make and as long to add to a request's scores (6,400 partners), where ``rows_in`` and
    ``engine.co_usage_array`` take a few array operations. Read as a mapping of id -> ``CoUsage`` as well."""

    __slots__ = ("_at", "_ids", "columns", "jobs", "scores", "source")

    def __init__(self, source: list[str], columns: np.ndarray, scores: np.ndarray, jobs: np.ndarray) -> None:
        self.source, self.columns, self.scores, self.jobs = source, columns, scores, jobs
        self._ids: list[str] | None = None
        self._at: dict[str, int] | None = None

    @classmethod
    def empty(cls) -> Partners:
        return cls([], np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.int64))

    @property
    def ids(self) -> list[str]:
        if self._ids is None:
            self._ids = [self.source[column] for column in self.columns.tolist()]
        return self._ids

    def rows_in(self, position: Mapping[str, int]) -> np.ndarray:
        """Each partner's row in a catalogue snapshot (``Catalogue.position``); -1 for one it does not hold."""
        return _rows(self.source, position, self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __getitem__(self, adapter_id: str) -> CoUsage:
        if self._at is None:
            self._at = {other: at for at, other in enumerate(self.ids)}
        at = self._at[adapter_id]
        return CoUsage(float(self.scores[at]), int(self.jobs[at]))

    def __repr__(self) -> str:
        return f"Partners({dict(self.items())!r})"


_NOT_LOOKED_UP = -2


@dataclass
class _Rows:
    """The catalogue rows of a source's ids, looked up as requests need them: one source (the kept history's ids)
    and one snapshot serve many requests, so each id is looked up once per snapshot, not once per request."""

    source: list[str]
    position: Mapping[str, int]
    rows: np.ndarray  # per id of ``source``: its row, -1 when absent, ``_NOT_LOOKED_UP``


_rows_memo: _Rows | None = None  # the last source and snapshot (another replaces it)


def _rows(source: list[str], position: Mapping[str, int], columns: np.ndarray) -> np.ndarray:
    global _rows_memo
    memo = _rows_memo
    if memo is None or memo.source is not source or memo.position is not position:
        memo = _Rows(source, position, np.full(len(source), _NOT_LOOKED_UP, dtype=np.int64))
        _rows_memo = memo
    rows = memo.rows[columns]
    missing = np.flatnonzero(rows == _NOT_LOOKED_UP)
    if len(missing):
        found = np.fromiter(
            (position.get(source[column], -1) for column in columns[missing].tolist()), dtype=np.int64,
            count=len(missing),
        )  # fmt: skip
        rows[missing] = found
        memo.rows[columns[missing]] = found  # another thread may write the same values: harmless
    return rows


def window_start(now: datetime) -> date:
    """The first UTC day of the co-usage window: the day ``CO_USAGE_DAYS`` days before ``now``."""
    return (now.astimezone(UTC) - timedelta(days=CO_USAGE_DAYS)).date()


def co_usage_with(adapter_id: str) -> Partners:
    """The adapters used with ``adapter_id`` and their co-usage (only those with a score above 0)."""
    return co_usage_of([adapter_id]).get(str(uuid.UUID(str(adapter_id)))) or Partners.empty()


def co_usage_of(adapter_ids: Sequence[str]) -> dict[str, Partners]:
    """``co_usage_with`` of several adapters at once (for-prompt's active adapters). Keys are canonical UUID
    strings; an adapter without co-usage is absent.

    From the history kept in memory when it is current (its key is the version the triggers keep and the window's
    first day) or catches up from the log of changed jobs; otherwise from one query, and a load of the history
    starts in the background when that query was slow (a history large enough to be worth keeping) or a history
    was kept before (so it stays current)."""
    targets = [str(target) for target in dict.fromkeys(uuid.UUID(str(adapter_id)) for adapter_id in adapter_ids)]
    if not targets:
        return {}
    first_day = window_start(timezone.now())
    history = _history_current(first_day)
    if history is not None:
        return {target: found for target in targets if (found := _from_history(history, target))}
    started = time_module.perf_counter()
    rows = _query(targets, first_day)
    if _state.history is not None or time_module.perf_counter() - started >= KEEP_AFTER_SECONDS:
        _load_in_background(first_day)
    return _scored(rows)


def _history_current(first_day: date) -> UsageHistory | None:
    """The kept history at the current version, caught up when it can be (one thread at a time; the others wait
    the few milliseconds it takes); a history that has gathered many changes is loaded again in the background."""
    history = _state.history
    if history is None or history.key[1] != first_day:
        return None
    state = usage_state()
    if state is None:
        return None
    if history.version == state.version:
        return history
    if history.version > state.version:  # the versions went back (a database restored beneath this process)
        return None
    with _state.lock:
        history = _state.history
        if history is None or history.key[1] != first_day:
            return None
        if history.version < state.version:
            history = history_catch_up(history, state)
            if history is None:
                return None
            _state.history = history
        # else another thread caught it up meanwhile, to this version or a later one
    if len(history.changes) > max(COMPACT_MIN_CHANGES, history.loaded.jobs.shape[0] // COMPACT_SHARE):
        _load_in_background(first_day)  # the changes cost a little on every ask: fold them into a new load
    return history


def _from_history(history: UsageHistory, target: str) -> Partners:
    partners, together, n_a = history.partners_of(target)
    scores = together / np.sqrt(n_a * history.counts[partners])  # n_ab / sqrt(n_a * n_b), as ``_scored``
    return Partners(history.ids, partners, scores, together)


def _scored(rows: Iterable[Row]) -> dict[str, Partners]:
    found: dict[str, tuple[list[str], list[float], list[int]]] = {}
    for target, other, n_ab, n_b, n_a in rows:
        if n_a and n_b and n_ab:
            ids, scores, jobs = found.setdefault(str(uuid.UUID(str(target))), ([], [], []))
            ids.append(str(uuid.UUID(str(other))))
            scores.append(n_ab / math.sqrt(n_a * n_b))
            jobs.append(int(n_ab))
    return {
        target: Partners(ids, np.arange(len(ids)), np.array(scores, dtype=np.float64), np.array(jobs, dtype=np.int64))
        for target, (ids, scores, jobs) in found.items()
    }


# --- the history kept in memory (``usage_history.py``) ------------------------------------------------------------

KEEP_AFTER_SECONDS = 0.02  # a co-usage query this slow means a history worth keeping in memory
RELOAD_MIN_SECONDS = 30.0  # a history is loaded again at most this often (meanwhile a stale one is not used)
COMPACT_MIN_CHANGES = 2_000  # a history with more changed jobs than this and than 1/COMPACT_SHARE of its rows
COMPACT_SHARE = 10  # is loaded again
WARM_MIN_LINKS = 50_000  # a process's first index with more links than this stored loads the history with it


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)  # who replaces ``history``
    history: UsageHistory | None = None
    loading: bool = False
    load_started: float = -math.inf  # time.monotonic() of the last load's start


_state = _State()


def history_current(first_day: date | None = None) -> UsageHistory | None:
    """Load the history now (tests, and the background load) and keep it. A catch-up that landed meanwhile is
    replaced: the load is exact at its own version, and the next request catches it up from the log."""
    history = history_load(first_day or window_start(timezone.now()))
    if history is not None:
        with _state.lock:
            _state.history = history
    return history


def history_reset() -> None:
    """Forget the history and when it was loaded (tests)."""
    _state.history = None
    _state.load_started = -math.inf


def history_prepare() -> None:
    """Load the history now when it is surely worth keeping: more than ``WARM_MIN_LINKS`` adapter links stored, of
    any job and age (one bounded read of an index). Called as a process builds its first index: that request waits
    seconds for the fit anyway (5 s at 10,000 adapters), and the load (0.9 s at 100,000 jobs) then no longer runs
    beside the requests that follow. Beside them it took 3.5 s and cost each about 5 ms: a thread that reads rows
    hands the interpreter over on every row and waits for it again, and two cores are shared with the products."""
    if _state.history is not None:
        return
    linked = DeliveryJobAdapter.objects.filter(adapter__isnull=False).values_list("pk", flat=True)
    if not linked[WARM_MIN_LINKS : WARM_MIN_LINKS + 1].exists():
        return
    with _state.lock:
        if _state.loading:
            return
        _state.loading, _state.load_started = True, time_module.monotonic()
    _load(window_start(timezone.now()))


def _load_in_background(first_day: date) -> None:
    """One load at a time, and none sooner than ``RELOAD_MIN_SECONDS`` after the last one started: a history that
    cannot catch up (its log was pruned, or too much changed) is loaded again, but not once per request."""
    with _state.lock:
        now = time_module.monotonic()
        if _state.loading or now - _state.load_started < RELOAD_MIN_SECONDS:
            return
        _state.loading, _state.load_started = True, now
    threading.Thread(target=_load_in_thread, args=(first_day,), name="co-usage-history", daemon=True).start()


def _load_in_thread(first_day: date) -> None:
    try:
        _load(first_day)
    finally:
        connection.close()  # this thread's own database connection


def _load(first_day: date) -> None:
    # Inside a caller's transaction (``history_prepare`` under the admin's change page), a savepoint: a load that
    # fails on PostgreSQL leaves that transaction usable. Never a transaction of its own: on SQLite that would take
    # the write lock for the whole read.
    try:
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            history_current(first_day)
    except Exception:  # the queries answer meanwhile
        logger.exception("Loading the co-usage history failed")
    finally:
        _state.loading = False
