"""Database triggers that keep the analytics rollups (``analytics.models``) exact, and their full rebuild.

The rollups count the ``kind = 'generation'`` delivery jobs per UTC hour (status counts, succeeded durations,
failures by error) and, per UTC hour and day, the distinct adapters linked to those jobs. The triggers update
them in the transaction of every write to ``deliveries_deliveryjob`` and ``deliveries_deliveryjobadapter``
(insert, update, delete, truncate) with upserts, so concurrent writers stay exact:

- SQLite: row triggers (``INSERT OR IGNORE`` then ``UPDATE``; SQLite has one writer at a time);
- PostgreSQL: statement triggers over transition tables that aggregate the change and
  ``INSERT ... ON CONFLICT DO UPDATE`` it (row locks on the rollup rows serialise concurrent writers).

``install()`` is idempotent and runs after every ``migrate`` (SQLite drops a table's triggers whenever a
migration rebuilds the table). ``rebuild()`` recomputes every rollup from the rows, with the same expressions.
"""

# ruff: noqa: S608 - SQL built from module constants, no input

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

from loraforge.db_triggers import statements_install

JOBS = "deliveries_deliveryjob"
LINKS = "deliveries_deliveryjobadapter"
JOB_HOURS = "analytics_jobhourrollup"
ERROR_HOURS = "analytics_joberrorhourrollup"
ADAPTER_HOURS = "analytics_adapterhourrollup"
ADAPTER_DAYS = "analytics_adapterdayrollup"
ROLLUPS = (JOB_HOURS, ERROR_HOURS, ADAPTER_HOURS, ADAPTER_DAYS)
STATUSES = ("pending", "running", "succeeded", "failed", "cancelled")
JOB_COLUMNS = ("kind", "status", "created_at", "started_at", "finished_at", "error", "error_code")
SQLITE_TRIGGER_NAMES = ("jobs_insert", "jobs_delete", "jobs_update", "links_insert", "links_delete", "links_update")

# Vendor expressions shared by the triggers and the rebuild; ``{x}`` is a row alias.
SQLITE = {
    "hour": "strftime('%Y-%m-%d %H:00:00', {x}.created_at)",
    "day": "date({x}.created_at)",
    "us": "(CAST(strftime('%s', {x}) AS INTEGER) * 1000000 + CAST(substr({x} || '.000000', 21, 6) AS INTEGER))",
    "error_key": "(CASE WHEN {x}.error IS NULL THEN '' ELSE 't' || {x}.error END)",
    "true": "1",
    "next_hour": "datetime({x}.bucket, '+1 hour')",
}
POSTGRES = {
    "hour": "date_trunc('hour', {x}.created_at, 'UTC')",
    "day": "({x}.created_at AT TIME ZONE 'UTC')::date",
    "us": "(EXTRACT(EPOCH FROM {x}) * 1000000)::bigint",
    "error_key": "(CASE WHEN {x}.error IS NULL THEN '' ELSE 't' || md5({x}.error) END)",
    "true": "true",
    "next_hour": "{x}.bucket + interval '1 hour'",
}


def _duration(vendor: dict[str, str], x: str) -> str:
    """Microseconds of ``finished_at - started_at`` for a succeeded row with both, else 0."""
    if vendor is SQLITE:
        span = f"{vendor['us'].format(x=f'{x}.finished_at')} - {vendor['us'].format(x=f'{x}.started_at')}"
    else:
        span = vendor["us"].format(x=f"({x}.finished_at - {x}.started_at)")
    return f"(CASE WHEN {_timed(x)} THEN {span} ELSE 0 END)"


def _timed(x: str) -> str:
    return f"({x}.status = 'succeeded' AND {x}.started_at IS NOT NULL AND {x}.finished_at IS NOT NULL)"


def _int(condition: str, vendor: dict[str, str]) -> str:
    return f"CAST({condition} AS INTEGER)" if vendor is POSTGRES else f"({condition})"


def _job_sums(vendor: dict[str, str], x: str, sign: str) -> list[str]:
    """``total, pending, ..., duration_us, duration_count`` of rows ``x``, each multiplied by ``sign``."""
    sums = [f"sum({sign})"]
    sums += [f"sum({sign} * {_int(f'{x}.status = {status!r}', vendor)})" for status in STATUSES]
    sums += [f"sum({sign} * {_duration(vendor, x)})", f"sum({sign} * {_int(_timed(x), vendor)})"]
    return sums


JOB_SUM_COLUMNS = ("total", *STATUSES, "duration_us", "duration_count")
ADAPTER_SUM_COLUMNS = ("total", "succeeded", "failed")


def _adapter_sums(vendor: dict[str, str], x: str, sign: str) -> list[str]:
    return [
        f"sum({sign})",
        f"sum({sign} * {_int(f'{x}.status = {chr(39)}succeeded{chr(39)}', vendor)})",
        f"sum({sign} * {_int(f'{x}.status = {chr(39)}failed{chr(39)}', vendor)})",
    ]


# --- rebuild -------------------------------------------------------------------------------------------------------


def rebuild_statements(vendor_name: str) -> list[str]:
    vendor = SQLITE if vendor_name == "sqlite" else POSTGRES
    hour, day = vendor["hour"].format(x="j"), vendor["day"].format(x="j")
    pairs = (
        f"(SELECT DISTINCT job_id, adapter_id FROM {LINKS} WHERE adapter_id IS NOT NULL) AS l "
        f"JOIN {JOBS} AS j ON j.id = l.job_id WHERE j.kind = 'generation'"
    )
    adapter_sums = ", ".join(_adapter_sums(vendor, "j", "1"))
    return [
        *(f"DELETE FROM {table}" for table in ROLLUPS),
        f"INSERT INTO {JOB_HOURS} (bucket, {', '.join(JOB_SUM_COLUMNS)}) "
        f"SELECT {hour}, {', '.join(_job_sums(vendor, 'j', '1'))} FROM {JOBS} AS j "
        f"WHERE j.kind = 'generation' GROUP BY 1",
        f"INSERT INTO {ERROR_HOURS} (bucket, error_code, error_key, error, count, last_created_at) "
        f"SELECT {hour}, coalesce(j.error_code, 'unknown'), {vendor['error_key'].format(x='j')}, min(j.error), "
        f"count(*), max(j.created_at) FROM {JOBS} AS j WHERE j.kind = 'generation' AND j.status = 'failed' "
        f"GROUP BY 1, 2, 3",
        f"INSERT INTO {ADAPTER_HOURS} (bucket, adapter_id, total, succeeded, failed) "
        f"SELECT {hour}, l.adapter_id, {adapter_sums} FROM {pairs} GROUP BY 1, 2",
        f"INSERT INTO {ADAPTER_DAYS} (bucket, adapter_id, total, succeeded, failed) "
        f"SELECT {day}, l.adapter_id, {adapter_sums} FROM {pairs} GROUP BY 1, 2",
    ]


def rebuild(connection: BaseDatabaseWrapper) -> None:
    """Recompute every rollup from the jobs and links (run inside a transaction to stay consistent)."""
    with connection.cursor() as cursor:
        for statement in rebuild_statements(connection.vendor):
            cursor.execute(statement)


# --- SQLite row triggers ------------------------------------------------------------------------------------------


def _sqlite_job_rows(x: str, sign: str) -> list[str]:
    """Statements that add (``sign`` 1) or remove (-1) job row ``x`` (NEW/OLD) from every rollup."""
    v = SQLITE
    hour, day = v["hour"].format(x=x), v["day"].format(x=x)
    generation = f"{x}.kind = 'generation'"
    sets = ", ".join(
        f"{column} = {column} + {sign} * {value}"
        for column, value in zip(
            JOB_SUM_COLUMNS,
            ["1", *(f"({x}.status = '{status}')" for status in STATUSES), _duration(v, x), f"({_timed(x)})"],
            strict=True,
        )
    )
    zeros = ", ".join("0" for _ in JOB_SUM_COLUMNS)
    adds = sign == "1"  # a removal only updates rows its addition created: a flush that emptied the rollups
    # first (Django deletes tables in name order) must not leave negative rows behind when it deletes the jobs
    statements = [
        *(
            [f"INSERT OR IGNORE INTO {JOB_HOURS} (bucket, {', '.join(JOB_SUM_COLUMNS)}) SELECT {hour}, {zeros} "
             f"WHERE {generation};"]
            if adds else []
        ),
        f"UPDATE {JOB_HOURS} SET {sets} WHERE {generation} AND bucket = {hour};",
        *_sqlite_error_rows(x, sign),
    ]  # fmt: skip
    links = f"SELECT DISTINCT adapter_id FROM {LINKS} WHERE job_id = {x}.id AND adapter_id IS NOT NULL"
    for table, bucket in ((ADAPTER_HOURS, hour), (ADAPTER_DAYS, day)):
        if adds:
            statements.append(
                f"INSERT OR IGNORE INTO {table} (bucket, adapter_id, total, succeeded, failed) "
                f"SELECT {bucket}, adapter_id, 0, 0, 0 FROM ({links}) WHERE {generation};"
            )
        statements += [
            f"UPDATE {table} SET total = total + {sign}, succeeded = succeeded + {sign} * ({x}.status = 'succeeded'), "
            f"failed = failed + {sign} * ({x}.status = 'failed') "
            f"WHERE {generation} AND bucket = {bucket} AND adapter_id IN ({links});",
        ]
    return statements


def _sqlite_error_rows(x: str, sign: str) -> list[str]:
    v = SQLITE
    failed = f"{x}.kind = 'generation' AND {x}.status = 'failed'"
    key = (
        f"bucket = {v['hour'].format(x=x)} AND error_code = coalesce({x}.error_code, 'unknown') "
        f"AND error_key = {v['error_key'].format(x=x)}"
    )
    if sign == "1":
        return [
            f"INSERT OR IGNORE INTO {ERROR_HOURS} (bucket, error_code, error_key, error, count) "
            f"SELECT {v['hour'].format(x=x)}, coalesce({x}.error_code, 'unknown'), {v['error_key'].format(x=x)}, "
            f"{x}.error, 0 WHERE {failed};",
            f"UPDATE {ERROR_HOURS} SET count = count + 1, last_created_at = "
            f"max(coalesce(last_created_at, {x}.created_at), {x}.created_at) WHERE {failed} AND {key};",
        ]
    return [
        f"UPDATE {ERROR_HOURS} SET count = count - 1 WHERE {failed} AND {key};",
        f"DELETE FROM {ERROR_HOURS} WHERE {failed} AND {key} AND count <= 0;",
        f"UPDATE {ERROR_HOURS} SET last_created_at = ({_last_failure(v, ERROR_HOURS)}) WHERE {failed} AND {key};",
    ]


def _last_failure(vendor: dict[str, str], rollup: str) -> str:
    """The newest ``created_at`` of the failures a row of ``rollup`` counts (after one of them went away)."""
    return (
        f"SELECT max(f.created_at) FROM {JOBS} AS f WHERE f.kind = 'generation' AND f.status = 'failed' "
        f"AND coalesce(f.error_code, 'unknown') = {rollup}.error_code "
        f"AND {vendor['error_key'].format(x='f')} = {rollup}.error_key "
        f"AND f.created_at >= {rollup}.bucket AND f.created_at < {vendor['next_hour'].format(x=rollup)}"
    )


def _sqlite_link_rows(x: str, sign: str) -> list[str]:
    """Add/remove link ``x``: it counts when it is the only link of its job to that adapter."""
    v = SQLITE
    other = (
        f"SELECT 1 FROM {LINKS} AS o WHERE o.job_id = {x}.job_id AND o.adapter_id = {x}.adapter_id AND o.id <> {x}.id"
    )
    counted = f"{x}.adapter_id IS NOT NULL AND NOT EXISTS ({other})"
    statements = []
    for table, bucket in ((ADAPTER_HOURS, v["hour"]), (ADAPTER_DAYS, v["day"])):
        job = f"SELECT {bucket.format(x='j')} FROM {JOBS} AS j WHERE j.id = {x}.job_id AND j.kind = 'generation'"
        status = f"(SELECT j.status FROM {JOBS} AS j WHERE j.id = {x}.job_id)"
        if sign == "1":  # a removal only updates existing rows (see _sqlite_job_rows)
            statements.append(
                f"INSERT OR IGNORE INTO {table} (bucket, adapter_id, total, succeeded, failed) "
                f"SELECT {bucket.format(x='j')}, {x}.adapter_id, 0, 0, 0 FROM {JOBS} AS j "
                f"WHERE j.id = {x}.job_id AND j.kind = 'generation' AND {counted};"
            )
        statements += [
            f"UPDATE {table} SET total = total + {sign}, "
            f"succeeded = succeeded + {sign} * ({status} = 'succeeded'), "
            f"failed = failed + {sign} * ({status} = 'failed') "
            f"WHERE {counted} AND adapter_id = {x}.adapter_id AND bucket = ({job});",
        ]
    return statements


def sqlite_statements() -> list[str]:
    changed = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in JOB_COLUMNS)
    link_changed = "OLD.job_id IS NOT NEW.job_id OR OLD.adapter_id IS NOT NEW.adapter_id"

    def trigger(name: str, event: str, table: str, body: list[str], when: str = "") -> str:
        condition = f" WHEN {when}" if when else ""
        return f"CREATE TRIGGER analytics_{name} AFTER {event} ON {table}{condition} BEGIN {' '.join(body)} END"

    created = [
        trigger("jobs_insert", "INSERT", JOBS, _sqlite_job_rows("NEW", "1")),
        trigger("jobs_delete", "DELETE", JOBS, _sqlite_job_rows("OLD", "-1")),
        trigger(
            "jobs_update", "UPDATE", JOBS, [*_sqlite_job_rows("OLD", "-1"), *_sqlite_job_rows("NEW", "1")], changed
        ),
        trigger("links_insert", "INSERT", LINKS, _sqlite_link_rows("NEW", "1")),
        trigger("links_delete", "DELETE", LINKS, _sqlite_link_rows("OLD", "-1")),
        trigger(
            "links_update",
            "UPDATE",
            LINKS,
            [*_sqlite_link_rows("OLD", "-1"), *_sqlite_link_rows("NEW", "1")],
            link_changed,
        ),
    ]
    # Dropped and created again, so a changed definition replaces the stored one (SQLite has no CREATE OR REPLACE).
    return [*(f"DROP TRIGGER IF EXISTS analytics_{name}" for name in SQLITE_TRIGGER_NAMES), *created]


def install(connection: BaseDatabaseWrapper) -> None:
    """(Re)create every trigger with the current definition (no-op when the tables do not exist yet). In one
    transaction: no write slips between a drop and its create."""
    from analytics import db_triggers_pg

    statements = {"sqlite": sqlite_statements, "postgresql": db_triggers_pg.postgres_statements}
    statements_install(connection, (JOBS, LINKS, *ROLLUPS), statements, atomic=True)


def uninstall(connection: BaseDatabaseWrapper) -> None:
    from analytics import db_triggers_pg

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for name in SQLITE_TRIGGER_NAMES:
                cursor.execute(f"DROP TRIGGER IF EXISTS analytics_{name}")
        elif connection.vendor == "postgresql":
            for statement in db_triggers_pg.drop_statements():
                cursor.execute(statement)
