"""Keep the number of adapters in ``CatalogueState.row_count`` with the version triggers.

``GET /adapters`` answers ``total`` from it instead of ``COUNT(*)`` (8.7 ms on 100,000 rows in PostgreSQL).
Replaces the triggers of 0004: SQLite row triggers add or subtract one; PostgreSQL statement triggers
count their transition tables.
"""

from __future__ import annotations

from django.db import migrations, models

from adapters.db_triggers import PG_TRIGGERS, SQLITE_CHANGES, SQLITE_VERSION, postgres_statements, sqlite_statements


def _sqlite(schema_editor):
    for event in SQLITE_CHANGES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS adapters_catalogue_{event}")
    for statement in sqlite_statements():
        schema_editor.execute(statement)


def _postgres(schema_editor):
    schema_editor.execute("DROP TRIGGER IF EXISTS adapters_catalogue_write ON adapters_adapter")
    schema_editor.execute("DROP TRIGGER IF EXISTS adapters_catalogue_truncate ON adapters_adapter")
    for statement in postgres_statements():
        schema_editor.execute(statement)


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        _sqlite(schema_editor)
    elif vendor == "postgresql":
        _postgres(schema_editor)
    count = apps.get_model("adapters", "Adapter").objects.count()
    apps.get_model("adapters", "CatalogueState").objects.filter(pk=1).update(row_count=count)


def uninstall(apps, schema_editor):
    """Back to the version-only triggers of 0004 (on SQLite after the column is gone: ``restore_sqlite_triggers``)."""
    if schema_editor.connection.vendor == "sqlite":
        drop_sqlite_triggers(apps, schema_editor)
    elif schema_editor.connection.vendor == "postgresql":
        for name, _event, _referencing, _function in PG_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON adapters_adapter")
        for name in ("adapters_catalogue_insert", "adapters_catalogue_delete", "adapters_catalogue_truncate"):
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}()")
        for name, event in (
            ("adapters_catalogue_write", "INSERT OR UPDATE OR DELETE"),
            ("adapters_catalogue_truncate", "TRUNCATE"),
        ):
            schema_editor.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON adapters_adapter "
                "FOR EACH STATEMENT EXECUTE FUNCTION adapters_catalogue_bump()"
            )


def drop_sqlite_triggers(apps, schema_editor):
    """SQLite rebuilds a table to add a column, and its rename fails while triggers name the table."""
    if schema_editor.connection.vendor == "sqlite":
        for event in SQLITE_CHANGES:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS adapters_catalogue_{event}")


def restore_sqlite_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for event in SQLITE_CHANGES:
            schema_editor.execute(
                f"CREATE TRIGGER IF NOT EXISTS adapters_catalogue_{event} AFTER {event.upper()} ON adapters_adapter "
                f"BEGIN UPDATE adapters_cataloguestate SET {SQLITE_VERSION} WHERE id = 1; END"
            )


class Migration(migrations.Migration):
    dependencies = [("adapters", "0006_scannedfile_sidecar_fingerprint")]

    operations = [
        migrations.RunPython(drop_sqlite_triggers, restore_sqlite_triggers),
        migrations.AddField(model_name="cataloguestate", name="row_count", field=models.BigIntegerField(default=0)),
        migrations.RunPython(install, uninstall),
    ]
