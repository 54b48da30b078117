"""``loraforge.sqlite``: the writers of a process queue for SQLite's write lock in the process (issue 9)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from adapters.models import Adapter
from loraforge.sqlite.base import is_write, write_lock
from tests.factories import AdapterFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # The backend of SQLite databases: runs in the SQLite pass of make test (CI included); PostgreSQL has no such lock.
    pytest.mark.skipif(connection.vendor != "sqlite", reason="loraforge.sqlite is the SQLite backend (SQLite pass)"),
]


def _in_thread(target, *args) -> threading.Thread:
    def run() -> None:
        try:
            target(*args)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _lock():
    return write_lock(str(connection.settings_dict["NAME"]))


@pytest.mark.parametrize(
    ("sql", "writes"),
    [
        ("INSERT INTO t VALUES (1)", True),
        ("  update t set a = 1", True),
        ("DELETE FROM t", True),
        ("REPLACE INTO t VALUES (1)", True),
        ("SELECT * FROM t", False),
        ("PRAGMA foreign_keys", False),
        ("SAVEPOINT s1", False),
    ],
)
def test_writes_are_told_from_reads(sql, writes):
    assert is_write(sql) is writes


def test_a_transaction_holds_the_process_write_lock_until_it_ends():
    with transaction.atomic():
        assert connection.holds_write_lock
        assert _lock().locked()
    assert not connection.holds_write_lock
    assert not _lock().locked()


def _create_then_fail() -> None:
    with transaction.atomic():
        AdapterFactory()
        raise RuntimeError("boom")


def test_a_failed_transaction_releases_the_lock():
    with pytest.raises(RuntimeError):
        _create_then_fail()
    assert not _lock().locked()
    assert not Adapter.objects.exists()


def test_reads_never_wait_for_a_writer():
    AdapterFactory()
    with transaction.atomic():
        counts: list[int] = []
        _in_thread(lambda: counts.append(Adapter.objects.count())).join(5)
        assert counts == [1]


def test_a_writer_queues_behind_a_transaction_instead_of_failing():
    """The second writer waits for the first to commit (longer than any busy handler retry) and then succeeds."""
    AdapterFactory(name="first")
    done = threading.Event()

    def second_writer() -> None:
        Adapter.objects.filter(name="first").update(notes="from the second writer")
        done.set()

    with transaction.atomic():
        Adapter.objects.filter(name="first").update(notes="from the first writer")
        thread = _in_thread(second_writer)
        time.sleep(0.3)
        assert not done.is_set()  # queued in the process, not inside SQLite
    thread.join(5)
    assert done.is_set()
    assert Adapter.objects.get(name="first").notes == "from the second writer"


def test_a_writer_that_waits_past_the_timeout_gets_database_is_locked(monkeypatch):
    """Past the busy timeout the queued writer fails like SQLite would (the API turns it into a 503)."""
    from django.db import OperationalError

    from loraforge.sqlite.base import DatabaseWrapper

    monkeypatch.setattr(DatabaseWrapper, "lock_timeout", property(lambda self: 0.2))
    errors: list[str] = []

    def impatient() -> None:
        try:
            with transaction.atomic():
                pass
        except OperationalError as exc:
            errors.append(str(exc))

    with transaction.atomic():
        _in_thread(impatient).join(5)
    assert errors == ["database is locked"]


def test_a_connection_runs_with_the_configured_page_cache_and_wal():
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        assert cursor.fetchone()[0] == -256
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
