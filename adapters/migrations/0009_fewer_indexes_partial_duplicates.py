"""Fewer, better adapter indexes (issue 9).

- ``has_duplicates`` gets a partial index: Django writes ``has_duplicates=True`` as a bare ``WHERE "has_duplicates"``,
  which a plain index on the column cannot serve, so every create scanned the table.
- The single-column indexes of ``active``, ``created_at`` and ``updated_at`` go: the composite sort indexes lead
  with those columns (and ``adapter_active_ordinal``/``adapter_active_partial`` cover ``active``), and every insert
  paid for three more B-trees. They are dropped by name, not by ``AlterField``: on SQLite that would rebuild the table
  and lose the raw-SQL indexes and catalogue triggers of migrations 0002, 0004, 0007 and 0008.
"""

from django.db import migrations, models

DROPPED = {
    "active": ("adapters_adapter_active_cd5a33c8", models.BooleanField(default=False), '"active"'),
    "created_at": ("adapters_adapter_created_at_b586355b", models.DateTimeField(auto_now_add=True), '"created_at"'),
    "updated_at": ("adapters_adapter_updated_at_047a71f8", models.DateTimeField(auto_now=True), '"updated_at"'),
}


def _drop(name: str, field: models.Field, column: str) -> migrations.SeparateDatabaseAndState:
    return migrations.SeparateDatabaseAndState(
        state_operations=[migrations.AlterField(model_name="adapter", name=column.strip('"'), field=field)],
        database_operations=[
            migrations.RunSQL(
                f'DROP INDEX IF EXISTS "{name}"',
                reverse_sql=f'CREATE INDEX IF NOT EXISTS "{name}" ON "adapters_adapter" ({column})',
            )
        ],
    )


class Migration(migrations.Migration):
    dependencies = [
        ("adapters", "0008_adapter_tags"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="adapter", name="adapter_has_duplicates"),
        migrations.AddIndex(
            model_name="adapter",
            index=models.Index(
                condition=models.Q(("has_duplicates", True)),
                fields=["has_duplicates"],
                name="adapter_has_duplicates_partial",
            ),
        ),
        *[_drop(name, field, column) for name, field, column in DROPPED.values()],
    ]
