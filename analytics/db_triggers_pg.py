"""PostgreSQL statement triggers of the analytics rollups (see ``analytics.db_triggers``).

Each trigger reads its statement's transition tables (``old_rows``/``new_rows``), aggregates the change per rollup
key and upserts it, so a bulk insert of many jobs costs one upsert per touched hour, not one per row.
"""

# ruff: noqa: S608 - SQL built from module constants, no input

from __future__ import annotations

from analytics.db_triggers import (
    ADAPTER_DAYS,
    ADAPTER_HOURS,
    ADAPTER_SUM_COLUMNS,
    ERROR_HOURS,
    JOB_COLUMNS,
    JOB_HOURS,
    JOB_SUM_COLUMNS,
    JOBS,
    LINKS,
    POSTGRES,
    ROLLUPS,
    _adapter_sums,
    _job_sums,
    _last_failure,
)

EMPTY_JOBS = f"(SELECT * FROM {JOBS} WHERE false)"
EMPTY_LINKS = f"(SELECT * FROM {LINKS} WHERE false)"
EVENTS = {"insert": ("INSERT", "NEW TABLE AS new_rows"), "delete": ("DELETE", "OLD TABLE AS old_rows"),
          "update": ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows")}  # fmt: skip


def _relations(event: str, empty: str) -> tuple[str, str]:
    old = "old_rows" if event in ("delete", "update") else empty
    new = "new_rows" if event in ("insert", "update") else empty
    return old, new


def _upsert(table: str, key: str, bucket: str, columns: tuple[str, ...], sums: list[str], source: str) -> str:
    """Add the per-key sums of ``source`` (rows ``d`` with ``sign``) to ``table``; keys whose sums are all 0 are
    skipped, and keys are written in order (concurrent writers lock rows in the same order)."""
    nonzero = " OR ".join(f"{value} <> 0" for value in sums)
    names = [name.strip() for name in key.split(",")]
    keys = ", ".join(str(position) for position in range(1, len(names) + 1))
    adds = ", ".join(f"{column} = t.{column} + EXCLUDED.{column}" for column in columns)
    selected = ", ".join(f"{value} AS {column}" for value, column in zip(sums, columns, strict=True))
    grouped = f"SELECT {bucket}, {selected} FROM {source} GROUP BY {keys} HAVING {nonzero}"
    # A removal only updates a row its addition created: jobs deleted after their rollups were emptied (a flush
    # that deletes table by table) leave no negative row behind.
    match = " AND ".join(f"e.{name} = g.{name}" for name in names)
    kept = f"g.{columns[0]} > 0 OR EXISTS (SELECT 1 FROM {table} AS e WHERE {match})"
    return (
        f"INSERT INTO {table} AS t ({key}, {', '.join(columns)}) SELECT g.* FROM ({grouped}) AS g ({key}, "
        f"{', '.join(columns)}) WHERE {kept} ORDER BY {keys} ON CONFLICT ({key}) DO UPDATE SET {adds}"
    )


def _job_statements(event: str) -> list[str]:
    old, new = _relations(event, EMPTY_JOBS)
    delta = f"(SELECT -1 AS sign, o.* FROM {old} AS o UNION ALL SELECT 1 AS sign, n.* FROM {new} AS n)"
    hour = POSTGRES["hour"].format(x="d")
    statements = [
        _upsert(
            JOB_HOURS, "bucket", hour, JOB_SUM_COLUMNS, _job_sums(POSTGRES, "d", "d.sign"),
            f"{delta} AS d WHERE d.kind = 'generation'",
        ),
        *_error_statements(delta, removes=event != "insert"),
    ]  # fmt: skip
    pairs = (
        f"{delta} AS d JOIN LATERAL (SELECT DISTINCT l.adapter_id FROM {LINKS} AS l WHERE l.job_id = d.id "
        f"AND l.adapter_id IS NOT NULL) AS a ON true WHERE d.kind = 'generation'"
    )
    return statements + _adapter_statements(pairs)


def _error_statements(delta: str, *, removes: bool) -> list[str]:
    v = POSTGRES
    failed = f"{delta} AS d WHERE d.kind = 'generation' AND d.status = 'failed'"
    key = f"{v['hour'].format(x='d')}, coalesce(d.error_code, 'unknown'), {v['error_key'].format(x='d')}"
    statements = [
        f"INSERT INTO {ERROR_HOURS} AS t (bucket, error_code, error_key, error, count, last_created_at) "
        f"SELECT {key}, min(d.error), sum(d.sign), max(d.created_at) FILTER (WHERE d.sign > 0) FROM {failed} "
        f"GROUP BY 1, 2, 3 HAVING sum(d.sign) <> 0 OR bool_or(d.sign < 0) ORDER BY 1, 2, 3 "
        f"ON CONFLICT (bucket, error_code, error_key) DO UPDATE SET count = t.count + EXCLUDED.count, "
        f"last_created_at = greatest(t.last_created_at, EXCLUDED.last_created_at)"
    ]
    if removes:
        touched = f"(SELECT DISTINCT {key} FROM {failed} AND d.sign < 0) AS k (bucket, error_code, error_key)"
        match = "e.bucket = k.bucket AND e.error_code = k.error_code AND e.error_key = k.error_key"
        statements += [
            f"DELETE FROM {ERROR_HOURS} AS e USING {touched} WHERE {match} AND e.count <= 0",
            f"UPDATE {ERROR_HOURS} AS e SET last_created_at = ({_last_failure(v, 'e')}) FROM {touched} WHERE {match}",
        ]
    return statements


def _adapter_statements(pairs: str) -> list[str]:
    """Upsert the adapter rollups from ``pairs``: rows ``d`` (a job row with ``sign``) joined with ``a.adapter_id``."""
    sums = _adapter_sums(POSTGRES, "d", "d.sign")
    return [
        _upsert(table, "bucket, adapter_id", f"{POSTGRES[unit].format(x='d')}, a.adapter_id", ADAPTER_SUM_COLUMNS,
                sums, pairs)
        for table, unit in ((ADAPTER_HOURS, "hour"), (ADAPTER_DAYS, "day"))
    ]  # fmt: skip


def _link_statements(event: str) -> list[str]:
    """A link counts once per (job, adapter). A pair of the new rows is added when no link had it before the
    statement (none in the table but the new rows, none among the old rows); a pair of the old rows is removed when
    no link has it after. Each test is an index probe on ``(adapter_id, job_id)``."""
    old, new = _relations(event, EMPTY_LINKS)
    same = "o.job_id = {x}.job_id AND o.adapter_id = {x}.adapter_id"
    added = (
        f"SELECT DISTINCT n.job_id, n.adapter_id, 1 AS sign FROM {new} AS n WHERE n.adapter_id IS NOT NULL "
        f"AND NOT EXISTS (SELECT 1 FROM {LINKS} AS o WHERE {same.format(x='n')} "
        f"AND NOT EXISTS (SELECT 1 FROM {new} AS x WHERE x.id = o.id)) "
        f"AND NOT EXISTS (SELECT 1 FROM {old} AS o WHERE {same.format(x='n')})"
    )
    removed = (
        f"SELECT DISTINCT r.job_id, r.adapter_id, -1 AS sign FROM {old} AS r WHERE r.adapter_id IS NOT NULL "
        f"AND NOT EXISTS (SELECT 1 FROM {LINKS} AS o WHERE {same.format(x='r')})"
    )
    pairs = (
        f"({added} UNION ALL {removed}) AS a JOIN {JOBS} AS j ON j.id = a.job_id "
        f"CROSS JOIN LATERAL (SELECT a.sign, j.created_at, j.status) AS d WHERE j.kind = 'generation'"
    )
    return _adapter_statements(pairs)


def _unchanged_update(table_columns: tuple[str, ...]) -> str:
    """Leave early when an update changed none of the columns the rollups read (progress and heartbeat writes)."""
    old = ", ".join(f"o.{column}" for column in table_columns)
    new = ", ".join(f"n.{column}" for column in table_columns)
    return (
        f"IF NOT EXISTS (SELECT 1 FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id "
        f"WHERE ({old}) IS DISTINCT FROM ({new})) THEN RETURN NULL; END IF;"
    )


def _function(name: str, statements: list[str], guard: str = "") -> str:
    body = " ".join(f"{statement};" for statement in statements)
    return (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$ BEGIN {guard} {body} RETURN NULL; END $$ "
        f"LANGUAGE plpgsql"
    )


def postgres_statements() -> list[str]:
    statements = []
    for table, builder, columns in (
        (JOBS, _job_statements, JOB_COLUMNS),
        (LINKS, _link_statements, ("job_id", "adapter_id")),
    ):
        short = "jobs" if table == JOBS else "links"
        for event, (verb, referencing) in EVENTS.items():
            name = f"analytics_{short}_{event}"
            guard = _unchanged_update(("id", *columns)) if event == "update" else ""
            statements += [
                _function(name, builder(event), guard),
                f"CREATE OR REPLACE TRIGGER {name} AFTER {verb} ON {table} REFERENCING {referencing} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
            ]
        cleared = ROLLUPS if table == JOBS else (ADAPTER_HOURS, ADAPTER_DAYS)
        statements += [
            _function(f"analytics_{short}_truncate", [f"DELETE FROM {rollup}" for rollup in cleared]),
            f"CREATE OR REPLACE TRIGGER analytics_{short}_truncate AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION analytics_{short}_truncate()",
        ]
    return statements


def switch_statements(enabled: bool) -> list[str]:
    """``ALTER TABLE ... ENABLE|DISABLE TRIGGER`` of every rollup trigger: transactional, and it takes the tables'
    SHARE ROW EXCLUSIVE lock (other writers wait, readers do not), where a DROP would block readers too."""
    verb = "ENABLE" if enabled else "DISABLE"
    return [
        f"ALTER TABLE {table} {verb} TRIGGER analytics_{short}_{event}"
        for table, short in ((JOBS, "jobs"), (LINKS, "links"))
        for event in (*EVENTS, "truncate")
    ]


def drop_statements() -> list[str]:
    statements = []
    for table, short in ((JOBS, "jobs"), (LINKS, "links")):
        for event in (*EVENTS, "truncate"):
            statements += [
                f"DROP TRIGGER IF EXISTS analytics_{short}_{event} ON {table}",
                f"DROP FUNCTION IF EXISTS analytics_{short}_{event}()",
            ]
    return statements
