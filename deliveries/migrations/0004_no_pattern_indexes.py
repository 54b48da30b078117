"""Two PostgreSQL ``varchar_pattern_ops`` indexes of the jobs table dropped (issue 13): Django adds one beside every
indexed ``CharField`` for ``LIKE 'prefix%'`` lookups, which nothing runs on a job's ``kind`` or ``mode`` (their
filters are exact, served by the plain and composite indexes); ``kind``'s plain index went in 0003 and left its
pattern index behind. Every job inserted paid for both (a restore inserts a million). SQLite never had them.
"""

from django.db import migrations

INDEXES = {
    "deliveries_deliveryjob_kind_1f913512_like": "kind",
    "deliveries_deliveryjob_mode_670f61e2_like": "mode",
}


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in INDEXES:
            schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, column in INDEXES.items():
            schema_editor.execute(
                f'CREATE INDEX IF NOT EXISTS "{name}" ON "deliveries_deliveryjob" ("{column}" varchar_pattern_ops)'
            )


class Migration(migrations.Migration):
    dependencies = [("deliveries", "0003_fewer_indexes")]

    operations = [migrations.RunPython(drop, create)]
