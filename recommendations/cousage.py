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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from django.db import connection
from django.utils import timezone

from recommendations.cousage_query import Row
from recommendations.cousage_query import co_usage_rows as _query
from recommendations.scoring import CO_USAGE_DAYS
from recommendations.usage_history import UsageHistory, history_catch_up, history_load, usage_state, usage_version

__all__ = ["CoUsage", "co_usage_of", "co_usage_with", "history_current", "history_reset", "usage_version"]

logger = logging.getLogger("loraforge.recommendations")


class CoUsage(NamedTuple):  # a tuple: a popular target has thousands of partners, made on every request
    score: float
    jobs: int  # n_ab: succeeded jobs that used both


def window_start(now: datetime) -> date:
    """The first UTC day of the co-usage window: the day ``CO_USAGE_DAYS`` days before ``now``."""
    return (now.astimezone(UTC) - timedelta(days=CO_USAGE_DAYS)).date()


def co_usage_with(adapter_id: str) -> dict[str, CoUsage]:
    """The adapters used with ``adapter_id`` and their co-usage (only those with a score above 0)."""
    return co_usage_of([adapter_id]).get(str(uuid.UUID(str(adapter_id))), {})


def co_usage_of(adapter_ids: Sequence[str]) -> dict[str, dict[str, CoUsage]]:
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


def _from_history(history: UsageHistory, target: str) -> dict[str, CoUsage]:
    import numpy as np

    partners, together, n_a = history.partners_of(target)
    scores = together / np.sqrt(n_a * history.counts[partners])  # n_ab / sqrt(n_a * n_b), as ``_scored``
    ids = history.ids
    return {
        ids[partner]: CoUsage(score, jobs)
        for partner, score, jobs in zip(partners.tolist(), scores.tolist(), together.tolist(), strict=True)
    }


def _scored(rows: Iterable[Row]) -> dict[str, dict[str, CoUsage]]:
    result: dict[str, dict[str, CoUsage]] = {}
    for target, other, n_ab, n_b, n_a in rows:
        if n_a and n_b and n_ab:
            usage = CoUsage(score=n_ab / math.sqrt(n_a * n_b), jobs=int(n_ab))
            result.setdefault(str(uuid.UUID(str(target))), {})[str(uuid.UUID(str(other)))] = usage
    return result


# --- the history kept in memory (``usage_history.py``) ------------------------------------------------------------

KEEP_AFTER_SECONDS = 0.02  # a co-usage query this slow means a history worth keeping in memory
RELOAD_MIN_SECONDS = 30.0  # a history is loaded again at most this often (meanwhile a stale one is not used)
COMPACT_MIN_CHANGES = 2_000  # a history with more changed jobs than this and than 1/COMPACT_SHARE of its rows
COMPACT_SHARE = 10  # is loaded again


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


def _load_in_background(first_day: date) -> None:
    """One load at a time, and none sooner than ``RELOAD_MIN_SECONDS`` after the last one started: a history that
    cannot catch up (its log was pruned, or too much changed) is loaded again, but not once per request."""
    with _state.lock:
        now = time_module.monotonic()
        if _state.loading or now - _state.load_started < RELOAD_MIN_SECONDS:
            return
        _state.loading, _state.load_started = True, now
    threading.Thread(target=_load, args=(first_day,), name="co-usage-history", daemon=True).start()


def _load(first_day: date) -> None:
    try:
        history_current(first_day)
    except Exception:
        logger.exception("Loading the co-usage history failed")
    finally:
        _state.loading = False
        connection.close()  # this thread's own database connection
