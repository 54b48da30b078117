"""The database triggers that bump ``UsageState.version`` whenever the co-usage history changes (SPEC 6.7.2: the
adapter links of the succeeded generation jobs), and log which job changed (``UsageChange``) in the same transaction.

A jobs row counts when it is, or was, a succeeded generation job and its status, kind or creation time changes (or it
is inserted or deleted as one); progress updates of running jobs never match. A links row counts when its job (before
or after the write) is a succeeded generation job. The version never repeats, as the catalogue's
(``adapters/db_triggers.py``): PostgreSQL draws it from a sequence, SQLite takes the larger of version + 1 and the
time in microseconds. On SQLite they are row triggers whose ``WHEN`` is checked before their body runs; on
PostgreSQL, statement triggers over their transition tables (one check per statement, whatever a bulk write holds).
``install()`` is idempotent and runs after every ``migrate``.

The versions follow the commits: the bump is the first write and locks the state row until the transaction ends,
so the next writer's version (drawn once it holds the lock; PostgreSQL evaluates the ``UPDATE`` again after the wait)
is larger, and a reader that sees version V sees every change logged at V or before.
"""

# ruff: noqa: S608 - SQL built from module constants, no input

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection as default_connection
from django.db.backends.base.base import BaseDatabaseWrapper

from adapters.db_triggers import SQLITE_VERSION
from loraforge.db_triggers import statements_install

JOBS = "deliveries_deliveryjob"
LINKS = "deliveries_deliveryjobadapter"
STATE = "recommendations_usagestate"
LOG = "recommendations_usagechange"
PG_SEQUENCE = "recommendations_usage_version"
PG_FUNCTION = "recommendations_usage_bump"


def _counted(row: str) -> str:
    return f"({row}.kind = 'generation' AND {row}.status = 'succeeded')"


def _job_changed(old: str, new: str) -> str:
    return (
        f"({_counted(old)} OR {_counted(new)}) AND ({old}.status IS DISTINCT FROM {new}.status "
        f"OR {old}.kind IS DISTINCT FROM {new}.kind OR {old}.created_at IS DISTINCT FROM {new}.created_at)"
    )


def _job_of(row: str) -> str:
    return f"EXISTS (SELECT 1 FROM {JOBS} j WHERE j.id = {row}.job_id AND {_counted('j')})"


# SQLite: (trigger name, event, WHEN condition, the changed jobs' ids)
SQLITE_TRIGGERS = (
    ("usage_jobs_insert", f"INSERT ON {JOBS}", _counted("NEW"), ("NEW.id",)),
    ("usage_jobs_update", f"UPDATE ON {JOBS}", _job_changed("OLD", "NEW"), ("NEW.id",)),
    ("usage_jobs_delete", f"DELETE ON {JOBS}", _counted("OLD"), ("OLD.id",)),
    ("usage_links_insert", f"INSERT ON {LINKS}", _job_of("NEW"), ("NEW.job_id",)),
    ("usage_links_update", f"UPDATE ON {LINKS}", f"{_job_of('OLD')} OR {_job_of('NEW')}", ("OLD.job_id", "NEW.job_id")),
    ("usage_links_delete", f"DELETE ON {LINKS}", _job_of("OLD"), ("OLD.job_id",)),
)


def sqlite_statements(*, logged: bool = True) -> list[str]:
    """``logged``: the triggers also write ``UsageChange`` rows (False for a schema without the table)."""
    statements = []
    for name, event, condition, jobs in SQLITE_TRIGGERS:
        log = "".join(f"INSERT INTO {LOG} (version, job_id) SELECT version, {job} FROM {STATE} WHERE id = 1; "
                      for job in jobs) if logged else ""  # fmt: skip
        statements.append(
            f"CREATE TRIGGER IF NOT EXISTS recommendations_{name} AFTER {event} FOR EACH ROW WHEN {condition} "
            f"BEGIN UPDATE {STATE} SET {SQLITE_VERSION} WHERE id = 1; {log}END"
        )
    return statements


MARK_PRUNED = f"UPDATE {STATE} SET pruned_through = version WHERE id = 1;"
PG_LOG_SETTING = "loraforge.usage_log"  # 'off' in a transaction: the triggers bump the version but log nothing


def postgres_statements(*, logged: bool = True) -> list[str]:
    """Statement triggers over transition tables: one check per statement, whatever a bulk write (a restore of a
    million jobs) holds, and a running job's progress update costs one check of its one row."""
    bump = f"UPDATE {STATE} SET version = nextval('{PG_SEQUENCE}') WHERE id = 1 RETURNING version INTO changed_at"
    changed_jobs = {
        ("jobs", "insert"): f"SELECT n.id AS job FROM new_rows n WHERE {_counted('n')}",
        ("jobs", "update"): f"SELECT n.id AS job FROM old_rows o JOIN new_rows n ON n.id = o.id "
        f"WHERE {_job_changed('o', 'n')}",
        ("jobs", "delete"): f"SELECT o.id AS job FROM old_rows o WHERE {_counted('o')}",
        ("links", "insert"): f"SELECT r.job_id AS job FROM new_rows r WHERE {_job_of('r')}",
        ("links", "update"): f"SELECT r.job_id AS job FROM old_rows r WHERE {_job_of('r')} UNION "
        f"SELECT r.job_id FROM new_rows r WHERE {_job_of('r')}",
        ("links", "delete"): f"SELECT r.job_id AS job FROM old_rows r WHERE {_job_of('r')}",
    }
    log = (
        f"IF current_setting('{PG_LOG_SETTING}', true) IS DISTINCT FROM 'off' THEN "
        f"INSERT INTO {LOG} (version, job_id) SELECT DISTINCT changed_at, c.job FROM ({{jobs}}) c; END IF;"
        if logged
        else ""
    )
    referencing = {"insert": "NEW TABLE AS new_rows", "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
                   "delete": "OLD TABLE AS old_rows"}  # fmt: skip
    tables = {"jobs": JOBS, "links": LINKS}
    return [
        f"CREATE SEQUENCE IF NOT EXISTS {PG_SEQUENCE}",
        # TRUNCATE cannot name the jobs: the log counts as pruned through the new version, so kept histories load
        f"CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger AS $$ BEGIN UPDATE {STATE} SET version = "
        f"nextval('{PG_SEQUENCE}') WHERE id = 1; {MARK_PRUNED if logged else ''} RETURN NULL; END $$ "
        "LANGUAGE plpgsql",
        *(
            f"CREATE OR REPLACE FUNCTION {PG_FUNCTION}_{table}_{event}() RETURNS trigger AS $$ "
            f"DECLARE changed_at bigint; BEGIN IF EXISTS ({jobs}) THEN {bump}; {log.format(jobs=jobs)} END IF; "
            "RETURN NULL; END $$ LANGUAGE plpgsql"
            for (table, event), jobs in changed_jobs.items()
        ),
        *(
            f"CREATE OR REPLACE TRIGGER recommendations_usage_{table}_{event} AFTER {event.upper()} ON "
            f"{tables[table]} REFERENCING {referencing[event]} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION {PG_FUNCTION}_{table}_{event}()"
            for table, event in changed_jobs
        ),
        *(
            f"CREATE OR REPLACE TRIGGER recommendations_usage_{table}_truncate AFTER TRUNCATE ON {name} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {PG_FUNCTION}()"
            for table, name in tables.items()
        ),
    ]


ENSURE_STATE_ROW = (
    f"INSERT INTO {STATE} (id, version) SELECT 1, 0 WHERE NOT EXISTS (SELECT 1 FROM {STATE} WHERE id = 1)"
)


def install(connection: BaseDatabaseWrapper, *, logged: bool | None = None) -> None:
    """Create whatever trigger or state row is missing (no-op when the tables do not exist yet). Without the log's
    table (a schema migrated back before it), or with ``logged=False``, the triggers only bump the version."""
    if logged is None:
        with connection.cursor() as cursor:
            logged = LOG in connection.introspection.table_names(cursor)
    statements = {
        "sqlite": lambda: [*sqlite_statements(logged=logged), ENSURE_STATE_ROW],
        "postgresql": lambda: [*postgres_statements(logged=logged), ENSURE_STATE_ROW],
    }
    statements_install(connection, (JOBS, LINKS, STATE), statements)


def reinstall(connection: BaseDatabaseWrapper, *, logged: bool | None = None) -> None:
    """Install the triggers with their current bodies (SQLite keeps an existing trigger whole; PostgreSQL replaces
    the functions, and keeps the sequence: the versions go on)."""
    if connection.vendor == "sqlite":
        _sqlite_drop(connection)
    install(connection, logged=logged)


def _sqlite_drop(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        for name, *_ in SQLITE_TRIGGERS:
            cursor.execute(f"DROP TRIGGER IF EXISTS recommendations_{name}")


def uninstall(connection: BaseDatabaseWrapper) -> None:
    """Drop the triggers and functions (the migration's reverse; the state table goes with the model)."""
    if connection.vendor == "sqlite":
        _sqlite_drop(connection)
        return
    if connection.vendor != "postgresql":
        return
    names = [f"{part}_{event}" for part in ("jobs", "links") for event in ("insert", "update", "delete")]
    drops = [
        *(f"DROP TRIGGER IF EXISTS recommendations_usage_{name} ON {JOBS if name.startswith('jobs') else LINKS}"
          for name in names),
        f"DROP TRIGGER IF EXISTS recommendations_usage_jobs_truncate ON {JOBS}",
        f"DROP TRIGGER IF EXISTS recommendations_usage_links_truncate ON {LINKS}",
        f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()",
        *(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}_{name}()" for name in names),
        f"DROP SEQUENCE IF EXISTS {PG_SEQUENCE}",
    ]  # fmt: skip
    with connection.cursor() as cursor:
        for statement in drops:
            cursor.execute(statement)


@contextmanager
def usage_suspended() -> Iterator[None]:
    """A bulk load of jobs inside the caller's transaction (a restore): on SQLite the row triggers are off while it
    runs (they made a load of 50,000 jobs 30-60 % slower); PostgreSQL's statement triggers check once per statement,
    so they stay on but log no job. At the end the version is bumped once and the log counts as pruned through it:
    a kept history is loaded again rather than caught up over a million jobs. A failure rolls it all back with the
    rows."""
    connection = default_connection
    if not connection.in_atomic_block:
        raise RuntimeError("usage_suspended() runs inside a transaction")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SET LOCAL {PG_LOG_SETTING} = 'off'")
        elif connection.vendor == "sqlite":
            _sqlite_drop(connection)
    yield
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SET LOCAL {PG_LOG_SETTING} = 'on'")
            cursor.execute(f"UPDATE {STATE} SET version = nextval('{PG_SEQUENCE}') WHERE id = 1")
        elif connection.vendor == "sqlite":
            install(connection)
            cursor.execute(f"UPDATE {STATE} SET {SQLITE_VERSION} WHERE id = 1")
        cursor.execute(MARK_PRUNED)
