"""The database triggers that bump ``UsageState.version`` whenever the co-usage history changes (SPEC 6.7.2: the
adapter links of the succeeded generation jobs).

A jobs row counts when it is, or was, a succeeded generation job and its status, kind or creation time changes (or it
is inserted or deleted as one); progress updates of running jobs never match. A links row counts when its job (before
or after the write) is a succeeded generation job. The version never repeats, as the catalogue's
(``adapters/db_triggers.py``): PostgreSQL draws it from a sequence, SQLite takes the larger of version + 1 and the
time in microseconds. On PostgreSQL the jobs triggers are row triggers whose ``WHEN`` is checked without calling
the function, and the links triggers are statement triggers over their transition tables (one check per
statement, whatever a bulk write holds). ``install()`` is idempotent and runs after every ``migrate``.
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


# SQLite: (trigger name, event, WHEN condition)
SQLITE_TRIGGERS = (
    ("usage_jobs_insert", f"INSERT ON {JOBS}", _counted("NEW")),
    ("usage_jobs_update", f"UPDATE ON {JOBS}", _job_changed("OLD", "NEW")),
    ("usage_jobs_delete", f"DELETE ON {JOBS}", _counted("OLD")),
    ("usage_links_insert", f"INSERT ON {LINKS}", _job_of("NEW")),
    ("usage_links_update", f"UPDATE ON {LINKS}", f"{_job_of('OLD')} OR {_job_of('NEW')}"),
    ("usage_links_delete", f"DELETE ON {LINKS}", _job_of("OLD")),
)


def sqlite_statements() -> list[str]:
    return [
        f"CREATE TRIGGER IF NOT EXISTS recommendations_{name} AFTER {event} FOR EACH ROW WHEN {condition} "
        f"BEGIN UPDATE {STATE} SET {SQLITE_VERSION} WHERE id = 1; END"
        for name, event, condition in SQLITE_TRIGGERS
    ]


def postgres_statements() -> list[str]:
    """Statement triggers over transition tables: one check per statement, whatever a bulk write (a restore of a
    million jobs) holds, and a running job's progress update costs one check of its one row."""
    bump = f"UPDATE {STATE} SET version = nextval('{PG_SEQUENCE}') WHERE id = 1"
    checks = {
        ("jobs", "insert"): f"SELECT 1 FROM new_rows n WHERE {_counted('n')}",
        ("jobs", "update"): f"SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {_job_changed('o', 'n')}",
        ("jobs", "delete"): f"SELECT 1 FROM old_rows o WHERE {_counted('o')}",
        ("links", "insert"): f"SELECT 1 FROM new_rows r WHERE {_job_of('r')}",
        ("links", "update"): f"SELECT 1 FROM old_rows r WHERE {_job_of('r')} UNION ALL "
        f"SELECT 1 FROM new_rows r WHERE {_job_of('r')}",
        ("links", "delete"): f"SELECT 1 FROM old_rows r WHERE {_job_of('r')}",
    }
    referencing = {"insert": "NEW TABLE AS new_rows", "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
                   "delete": "OLD TABLE AS old_rows"}  # fmt: skip
    tables = {"jobs": JOBS, "links": LINKS}
    return [
        f"CREATE SEQUENCE IF NOT EXISTS {PG_SEQUENCE}",
        f"CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger AS $$ BEGIN {bump}; RETURN NULL; END $$ "
        "LANGUAGE plpgsql",
        *(
            f"CREATE OR REPLACE FUNCTION {PG_FUNCTION}_{table}_{event}() RETURNS trigger AS $$ BEGIN "
            f"IF EXISTS ({check}) THEN {bump}; END IF; RETURN NULL; END $$ LANGUAGE plpgsql"
            for (table, event), check in checks.items()
        ),
        *(
            f"CREATE OR REPLACE TRIGGER recommendations_usage_{table}_{event} AFTER {event.upper()} ON "
            f"{tables[table]} REFERENCING {referencing[event]} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION {PG_FUNCTION}_{table}_{event}()"
            for table, event in checks
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


def install(connection: BaseDatabaseWrapper) -> None:
    """Create whatever trigger or state row is missing (no-op when the tables do not exist yet)."""
    statements = {
        "sqlite": lambda: [*sqlite_statements(), ENSURE_STATE_ROW],
        "postgresql": lambda: [*postgres_statements(), ENSURE_STATE_ROW],
    }
    statements_install(connection, (JOBS, LINKS, STATE), statements)


def uninstall(connection: BaseDatabaseWrapper) -> None:
    """Drop the triggers and functions (the migration's reverse; the state table goes with the model)."""
    if connection.vendor == "sqlite":
        drops = [f"DROP TRIGGER IF EXISTS recommendations_{name}" for name, _, _ in SQLITE_TRIGGERS]
    elif connection.vendor == "postgresql":
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
    else:
        drops = []
    with connection.cursor() as cursor:
        for statement in drops:
            cursor.execute(statement)


@contextmanager
def usage_suspended() -> Iterator[None]:
    """A bulk load of jobs inside the caller's transaction (a restore): on SQLite the row triggers are off while it
    runs (they made a load of 50,000 jobs 30-60 % slower) and the version is bumped once at the end; PostgreSQL's
    statement triggers check once per statement, so they stay on. A failure rolls the switch back with the rows."""
    connection = default_connection
    if not connection.in_atomic_block:
        raise RuntimeError("usage_suspended() runs inside a transaction")
    if connection.vendor != "sqlite":
        yield
        return
    uninstall(connection)
    yield
    install(connection)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {STATE} SET {SQLITE_VERSION} WHERE id = 1")
