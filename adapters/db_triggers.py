"""The database triggers that keep ``CatalogueState`` (version and row count) and ``AdapterTag`` in step with
the adapters table.

``install()`` is idempotent and runs after every ``migrate`` (``AdaptersConfig.ready`` connects it to
``post_migrate``): SQLite drops a table's triggers whenever a migration rebuilds the table, so they are
put back each time instead of trusting a migration that ran once.
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

from loraforge.db_triggers import statements_install

SQLITE_VERSION = "version = max(version + 1, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))"
SQLITE_CHANGES = {"insert": "row_count = row_count + 1", "update": None, "delete": "row_count = row_count - 1"}
PG_FUNCTIONS = {
    "adapters_catalogue_bump": "version = nextval('adapters_catalogue_version')",
    "adapters_catalogue_insert": "version = nextval('adapters_catalogue_version'), "
    "row_count = row_count + (SELECT count(*) FROM changed_rows)",
    "adapters_catalogue_delete": "version = nextval('adapters_catalogue_version'), "
    "row_count = row_count - (SELECT count(*) FROM changed_rows)",
    "adapters_catalogue_truncate": "version = nextval('adapters_catalogue_version'), row_count = 0",
}
PG_TRIGGERS = (
    ("adapters_catalogue_write", "UPDATE", "", "adapters_catalogue_bump"),
    ("adapters_catalogue_insert", "INSERT", "REFERENCING NEW TABLE AS changed_rows", "adapters_catalogue_insert"),
    ("adapters_catalogue_delete", "DELETE", "REFERENCING OLD TABLE AS changed_rows", "adapters_catalogue_delete"),
    ("adapters_catalogue_truncate", "TRUNCATE", "", "adapters_catalogue_truncate"),
)


SQLITE_TAGS = (
    "CREATE TRIGGER IF NOT EXISTS adapters_tags_insert AFTER INSERT ON adapters_adapter BEGIN "
    "INSERT OR IGNORE INTO adapters_adaptertag (adapter_id, tag) SELECT NEW.id, value FROM json_each(NEW.tags); END",
    "CREATE TRIGGER IF NOT EXISTS adapters_tags_update AFTER UPDATE OF tags ON adapters_adapter "
    "WHEN OLD.tags IS NOT NEW.tags BEGIN DELETE FROM adapters_adaptertag WHERE adapter_id = OLD.id; "
    "INSERT OR IGNORE INTO adapters_adaptertag (adapter_id, tag) SELECT NEW.id, value FROM json_each(NEW.tags); END",
    "CREATE TRIGGER IF NOT EXISTS adapters_tags_delete AFTER DELETE ON adapters_adapter BEGIN "
    "DELETE FROM adapters_adaptertag WHERE adapter_id = OLD.id; END",
)
PG_TAGS = (
    "CREATE OR REPLACE FUNCTION adapters_tags_sync() RETURNS trigger AS $$ BEGIN "
    "IF TG_OP IN ('UPDATE', 'DELETE') THEN DELETE FROM adapters_adaptertag WHERE adapter_id = OLD.id; END IF; "
    "IF TG_OP IN ('INSERT', 'UPDATE') THEN INSERT INTO adapters_adaptertag (adapter_id, tag) "
    "SELECT NEW.id, jsonb_array_elements_text(NEW.tags) ON CONFLICT DO NOTHING; END IF; "
    "RETURN NULL; END $$ LANGUAGE plpgsql",
    "CREATE OR REPLACE FUNCTION adapters_tags_truncate() RETURNS trigger AS $$ BEGIN "
    "DELETE FROM adapters_adaptertag; RETURN NULL; END $$ LANGUAGE plpgsql",
    "CREATE OR REPLACE TRIGGER adapters_tags_write AFTER INSERT OR DELETE ON adapters_adapter "
    "FOR EACH ROW EXECUTE FUNCTION adapters_tags_sync()",
    "CREATE OR REPLACE TRIGGER adapters_tags_update AFTER UPDATE OF tags ON adapters_adapter "
    "FOR EACH ROW WHEN (OLD.tags IS DISTINCT FROM NEW.tags) EXECUTE FUNCTION adapters_tags_sync()",
    "CREATE OR REPLACE TRIGGER adapters_tags_truncate AFTER TRUNCATE ON adapters_adapter "
    "FOR EACH STATEMENT EXECUTE FUNCTION adapters_tags_truncate()",
)
TAG_TABLE_FILL = {
    "sqlite": "INSERT OR IGNORE INTO adapters_adaptertag (adapter_id, tag) "
    "SELECT adapter.id, tag.value FROM adapters_adapter AS adapter, json_each(adapter.tags) AS tag",
    "postgresql": "INSERT INTO adapters_adaptertag (adapter_id, tag) "
    "SELECT id, jsonb_array_elements_text(tags) FROM adapters_adapter ON CONFLICT DO NOTHING",
}
ENSURE_STATE_ROW = (
    "INSERT INTO adapters_cataloguestate (id, version, row_count) "
    "SELECT 1, 0, (SELECT count(*) FROM adapters_adapter) "
    "WHERE NOT EXISTS (SELECT 1 FROM adapters_cataloguestate WHERE id = 1)"
)


def sqlite_statements() -> list[str]:
    statements = []
    for event, change in SQLITE_CHANGES.items():
        assignments = ", ".join(part for part in (SQLITE_VERSION, change) if part)
        statements.append(
            f"CREATE TRIGGER IF NOT EXISTS adapters_catalogue_{event} AFTER {event.upper()} ON adapters_adapter "
            f"BEGIN UPDATE adapters_cataloguestate SET {assignments} WHERE id = 1; END"
        )
    return [*statements, *SQLITE_TAGS]


def postgres_statements() -> list[str]:
    statements = ["CREATE SEQUENCE IF NOT EXISTS adapters_catalogue_version"]
    for name, assignments in PG_FUNCTIONS.items():
        statements.append(
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$ BEGIN "
            f"UPDATE adapters_cataloguestate SET {assignments} WHERE id = 1; RETURN NULL; END $$ LANGUAGE plpgsql"
        )
    for name, event, referencing, function in PG_TRIGGERS:
        statements.append(
            f"CREATE OR REPLACE TRIGGER {name} AFTER {event} ON adapters_adapter {referencing} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    return [*statements, *PG_TAGS]


def install(connection: BaseDatabaseWrapper) -> None:
    """Create whatever trigger or state row is missing (no-op when the tables do not exist yet)."""
    statements_install(
        connection,
        ("adapters_adapter", "adapters_cataloguestate", "adapters_adaptertag"),
        {  # the state row last: ``flush`` empties every table
            "sqlite": lambda: [*sqlite_statements(), ENSURE_STATE_ROW],
            "postgresql": lambda: [*postgres_statements(), ENSURE_STATE_ROW],
        },
    )
