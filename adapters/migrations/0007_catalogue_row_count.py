"""Keep the number of adapters in ``CatalogueState.row_count`` with the version triggers.

``GET /adapters`` answers ``total`` from it instead of ``COUNT(*)`` (8.7 ms on 100,000 rows in PostgreSQL).
Replaces the triggers of 0004: SQLite row triggers add or subtract one; PostgreSQL statement triggers
count their transition tables.
"""

from __future__ import annotations

from django.db import migrations, models

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


def _sqlite(schema_editor):
    for event, change in SQLITE_CHANGES.items():
        assignments = ", ".join(part for part in (SQLITE_VERSION, change) if part)
        schema_editor.execute(f"DROP TRIGGER IF EXISTS adapters_catalogue_{event}")
        schema_editor.execute(
            f"CREATE TRIGGER adapters_catalogue_{event} AFTER {event.upper()} ON adapters_adapter "
            f"BEGIN UPDATE adapters_cataloguestate SET {assignments} WHERE id = 1; END"
        )


def _postgres(schema_editor):
    schema_editor.execute("DROP TRIGGER IF EXISTS adapters_catalogue_write ON adapters_adapter")
    schema_editor.execute("DROP TRIGGER IF EXISTS adapters_catalogue_truncate ON adapters_adapter")
    for name, assignments in PG_FUNCTIONS.items():
        schema_editor.execute(
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$ BEGIN "
            f"UPDATE adapters_cataloguestate SET {assignments} WHERE id = 1; RETURN NULL; END $$ LANGUAGE plpgsql"
        )
    for name, event, referencing, function in PG_TRIGGERS:
        schema_editor.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON adapters_adapter {referencing} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )


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
