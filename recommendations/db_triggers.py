"""The database triggers that bump ``EmbeddingState.version`` on every write to the embeddings table.

Like the adapters' ``CatalogueState`` (``adapters/db_triggers.py``, whose version expression this shares): a version
never repeats, even after a rollback (PostgreSQL draws it from a sequence; SQLite takes the larger of version + 1 and
the time in microseconds). ``install()`` is idempotent and runs after every ``migrate``: SQLite drops a table's
triggers when a migration rebuilds the table, and ``flush`` empties the state table.
"""

# ruff: noqa: S608 - SQL built from module constants, no input

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

from adapters.db_triggers import SQLITE_VERSION
from loraforge.db_triggers import statements_install

TABLE = "recommendations_adapterembedding"
STATE = "recommendations_embeddingstate"
SQLITE_EVENTS = ("insert", "update", "delete")
PG_SEQUENCE = "recommendations_embedding_version"


def sqlite_statements() -> list[str]:
    return [
        f"CREATE TRIGGER IF NOT EXISTS recommendations_embedding_{event} AFTER {event.upper()} ON {TABLE} "
        f"BEGIN UPDATE {STATE} SET {SQLITE_VERSION} WHERE id = 1; END"
        for event in SQLITE_EVENTS
    ]


def postgres_statements() -> list[str]:
    return [
        f"CREATE SEQUENCE IF NOT EXISTS {PG_SEQUENCE}",
        "CREATE OR REPLACE FUNCTION recommendations_embedding_bump() RETURNS trigger AS $$ BEGIN "
        f"UPDATE {STATE} SET version = nextval('{PG_SEQUENCE}') WHERE id = 1; RETURN NULL; END $$ LANGUAGE plpgsql",
        f"CREATE OR REPLACE TRIGGER recommendations_embedding_write AFTER INSERT OR UPDATE OR DELETE ON {TABLE} "
        "FOR EACH STATEMENT EXECUTE FUNCTION recommendations_embedding_bump()",
        f"CREATE OR REPLACE TRIGGER recommendations_embedding_truncate AFTER TRUNCATE ON {TABLE} "
        "FOR EACH STATEMENT EXECUTE FUNCTION recommendations_embedding_bump()",
    ]


ENSURE_STATE_ROW = (  # e.g. after ``flush``, which empties every table
    f"INSERT INTO {STATE} (id, version) SELECT 1, 0 WHERE NOT EXISTS (SELECT 1 FROM {STATE} WHERE id = 1)"
)


def install(connection: BaseDatabaseWrapper) -> None:
    """Create whatever trigger or state row is missing (no-op when the tables do not exist yet)."""
    statements = {
        "sqlite": lambda: [*sqlite_statements(), ENSURE_STATE_ROW],
        "postgresql": lambda: [*postgres_statements(), ENSURE_STATE_ROW],
    }
    statements_install(connection, (TABLE, STATE), statements)


def uninstall(connection: BaseDatabaseWrapper) -> None:
    """Drop the triggers (the migration's reverse; the state table goes with the model)."""
    drops = {
        "sqlite": [f"DROP TRIGGER IF EXISTS recommendations_embedding_{event}" for event in SQLITE_EVENTS],
        "postgresql": [
            *(f"DROP TRIGGER IF EXISTS recommendations_embedding_{name} ON {TABLE}" for name in ("write", "truncate")),
            "DROP FUNCTION IF EXISTS recommendations_embedding_bump()",
            f"DROP SEQUENCE IF EXISTS {PG_SEQUENCE}",
        ],
    }.get(connection.vendor, [])
    with connection.cursor() as cursor:
        for statement in drops:
            cursor.execute(statement)
