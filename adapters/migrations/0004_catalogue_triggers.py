"""Database triggers that bump ``CatalogueState.version`` on every write to ``adapters_adapter``."""

from __future__ import annotations

from django.db import migrations

SQLITE_EVENTS = ("INSERT", "UPDATE", "DELETE")
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION adapters_catalogue_bump() RETURNS trigger AS $$
BEGIN
    UPDATE adapters_cataloguestate SET version = version + 1 WHERE id = 1;
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
                "BEGIN UPDATE adapters_cataloguestate SET version = version + 1 WHERE id = 1; END"
            )
    elif vendor == "postgresql":
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


class Migration(migrations.Migration):
    dependencies = [("adapters", "0003_catalogue_state")]

    operations = [migrations.RunPython(create_state_and_triggers, drop_triggers)]
