"""Indexes for substring search and tag filters, per database.

SQLite: covering b-tree indexes, so counting ``LIKE '%x%'`` matches scans a small index instead of
the wide table. PostgreSQL: trigram GIN indexes (pg_trgm), which ``LIKE '%x%'`` can use directly;
b-tree indexes are wrong there (long values exceed the b-tree row limit). When the database user may
not create the pg_trgm extension, the migration goes on without these indexes (searches still work,
just slower) and says so.
"""

from __future__ import annotations

import logging

from django.db import migrations, transaction

logger = logging.getLogger("loraforge.adapters")

COLUMNS = ("tag_index", "search_index")


def create_indexes(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "sqlite":
        for column in COLUMNS:
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS adapter_{column}_cover ON adapters_adapter ({column})")
    elif connection.vendor == "postgresql":
        try:
            with transaction.atomic(using=connection.alias):
                schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except Exception as exc:  # noqa: BLE001 - privileges vary by deployment
            logger.warning("pg_trgm unavailable (%s): adapter search runs without trigram indexes", exc)
            return
        for column in COLUMNS:
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS adapter_{column}_trgm ON adapters_adapter USING gin ({column} gin_trgm_ops)"
            )


def drop_indexes(apps, schema_editor):
    for column in COLUMNS:
        for suffix in ("cover", "trgm"):
            schema_editor.execute(f"DROP INDEX IF EXISTS adapter_{column}_{suffix}")


class Migration(migrations.Migration):
    dependencies = [("adapters", "0001_initial")]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
