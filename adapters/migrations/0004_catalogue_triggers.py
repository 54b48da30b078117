"""Database triggers that bump ``CatalogueState.version`` on every write to ``adapters_adapter``.

A version must never repeat, even after a rollback (a page cached inside a rolled-back transaction
would otherwise come back under the same version): PostgreSQL draws it from a sequence, which
rollbacks do not rewind; SQLite takes the larger of version + 1 and the current time in microseconds.
"""

from __future__ import annotations

from django.db import migrations

SQLITE_EVENTS = ("INSERT", "UPDATE", "DELETE")
SQLITE_BUMP = (
    "UPDATE adapters_cataloguestate SET version = "
    "max(version + 1, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)) WHERE id = 1"
)
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION adapters_catalogue_bump() RETURNS trigger AS $$
BEGIN
    UPDATE adapters_cataloguestate SET version = nextval('adapters_catalogue_version') WHERE id = 1;
    RETURN NULL;
END
$$ LANGUAGE plpgsql
"""


def create_state_and_triggers(apps, schema_editor):
    apps.get_model("adapters", "CatalogueState").objects.get_or_create(pk=1)
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        for event in SQLITE_EVENTS:
            schema_editor.execute(
                f"CREATE TRIGGER IF NOT EXISTS adapters_catalogue_{event.lower()} AFTER {event} ON adapters_adapter "
                f"BEGIN {SQLITE_BUMP}; END"
            )
    elif vendor == "postgresql":
        schema_editor.execute("CREATE SEQUENCE IF NOT EXISTS adapters_catalogue_version")
        schema_editor.execute(PG_FUNCTION)
        for event in ("INSERT OR UPDATE OR DELETE", "TRUNCATE"):
            name = "adapters_catalogue_truncate" if event == "TRUNCATE" else "adapters_catalogue_write"
            schema_editor.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON adapters_adapter "
                "FOR EACH STATEMENT EXECUTE FUNCTION adapters_catalogue_bump()"
            )


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        for event in SQLITE_EVENTS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS adapters_catalogue_{event.lower()}")
    elif vendor == "postgresql":
        for name in ("adapters_catalogue_write", "adapters_catalogue_truncate"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON adapters_adapter")
        schema_editor.execute("DROP FUNCTION IF EXISTS adapters_catalogue_bump()")
        schema_editor.execute("DROP SEQUENCE IF EXISTS adapters_catalogue_version")


class Migration(migrations.Migration):
    dependencies = [("adapters", "0003_catalogue_state")]

    operations = [migrations.RunPython(create_state_and_triggers, drop_triggers)]
