"""Django's SQLite backend with one change: the writers of a process queue for SQLite's single write lock
in the process instead of in SQLite's busy handler.

SQLite lets one writer in at a time. A writer that finds the lock taken sleeps in the busy handler (1 ms,
2 ms, ... up to 100 ms between tries) and can lose every retry to writers that arrive later, so under a
burst of concurrent writes some wait out the whole ``busy_timeout`` and fail ("database is locked", a 503).
Here every transaction (``BEGIN IMMEDIATE``) and every write outside one takes a process-wide lock first and
holds it until the transaction ends: the web threads and the embedded worker of the process queue on it
instead, and only writers in other processes (a ``manage.py`` command, a second server) meet the busy handler.
Readers never take it (WAL lets them read while a write is under way).
"""

from __future__ import annotations

import threading
from typing import Any

from django.db import OperationalError
from django.db.backends.sqlite3 import base

WRITE_PREFIXES = ("insert", "update", "delete", "replace")
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def write_lock(name: str) -> threading.Lock:
    """The lock of one database file, shared by every connection of the process."""
    with _locks_guard:
        return _locks.setdefault(name, threading.Lock())


def is_write(query: str) -> bool:
    return query.lstrip()[:7].lower().startswith(WRITE_PREFIXES)


class CursorWrapper(base.SQLiteCursorWrapper):
    """A write outside a transaction holds the process's write lock while SQLite runs it."""

    wrapper: DatabaseWrapper

    def execute(self, query: str, params: Any = None) -> Any:
        if self.wrapper.holds_write_lock or not is_write(query):
            return super().execute(query, params)
        with self.wrapper.queued_write():
            return super().execute(query, params)

    def executemany(self, query: str, param_list: Any) -> Any:
        if self.wrapper.holds_write_lock or not is_write(query):
            return super().executemany(query, param_list)
        with self.wrapper.queued_write():
            return super().executemany(query, param_list)


class _QueuedWrite:
    def __init__(self, wrapper: DatabaseWrapper) -> None:
        self.wrapper = wrapper

    def __enter__(self) -> None:
        self.wrapper.acquire_write_lock()

    def __exit__(self, *exc_info: object) -> None:
        self.wrapper.release_write_lock()


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.holds_write_lock = False

    @property
    def lock_timeout(self) -> float:
        return float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))

    def acquire_write_lock(self) -> None:
        if not write_lock(str(self.settings_dict["NAME"])).acquire(timeout=self.lock_timeout):
            raise OperationalError("database is locked")
        self.holds_write_lock = True

    def release_write_lock(self) -> None:
        if self.holds_write_lock:
            self.holds_write_lock = False
            write_lock(str(self.settings_dict["NAME"])).release()

    def queued_write(self) -> _QueuedWrite:
        return _QueuedWrite(self)

    def create_cursor(self, name: str | None = None) -> Any:
        cursor = self.connection.cursor(factory=CursorWrapper)
        cursor.wrapper = self
        return cursor

    def _start_transaction_under_autocommit(self) -> None:
        self.acquire_write_lock()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # private in django-stubs
        except BaseException:
            self.release_write_lock()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]  # private in django-stubs
        finally:
            self.release_write_lock()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]  # private in django-stubs
        finally:
            self.release_write_lock()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]  # private in django-stubs
        finally:
            self.release_write_lock()
