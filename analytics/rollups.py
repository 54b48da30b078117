"""Writes of the analytics rollups: the full rebuild (the triggers keep them exact between rebuilds)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction

from analytics import db_triggers


def rollups_rebuild() -> None:
    """Recompute every rollup from the delivery jobs and their adapter links, in one transaction; on PostgreSQL
    concurrent job writes wait for it (``SHARE`` lock), so nothing written meanwhile is lost or counted twice."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {db_triggers.JOBS}, {db_triggers.LINKS} IN SHARE MODE")
        db_triggers.rebuild(connection)


@contextmanager
def rollups_suspended() -> Iterator[None]:
    """A bulk load of jobs inside the caller's transaction: the rollup triggers are off while it runs, then the
    rollups are rebuilt from the tables and the triggers are on again, all in that transaction (a failure rolls the
    switch back with the rows). A rebuild costs a few set-based passes over every job; the triggers cost a join per
    statement (PostgreSQL) or several upserts per row (SQLite): worth it when the load is large against what is
    there already. Meanwhile other writers of jobs wait (SQLite: the one write lock; PostgreSQL: the tables' SHARE
    ROW EXCLUSIVE lock), readers do not."""
    from analytics import db_triggers_pg

    if not connection.in_atomic_block:
        raise RuntimeError("rollups_suspended() runs inside a transaction")
    if connection.vendor == "postgresql":
        _pg_switch(db_triggers_pg.switch_statements(enabled=False))
    else:
        db_triggers.uninstall(connection)
    yield
    rollups_rebuild()
    if connection.vendor == "postgresql":
        _pg_switch(db_triggers_pg.switch_statements(enabled=True))
    else:
        db_triggers.install(connection)


def _pg_switch(statements: list[str]) -> None:
    """PostgreSQL refuses to alter a table with pending trigger events: Django's foreign keys are deferred, so the
    checks queued so far run now (they would at commit), and later ones are deferred again."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for statement in statements:
            cursor.execute(statement)
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
