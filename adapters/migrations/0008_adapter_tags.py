"""``AdapterTag``: one row per (tag, adapter), filled from ``Adapter.tags`` and kept by triggers."""

import django.db.models.deletion
from django.db import migrations, models

TAG_TRIGGERS = ("adapters_tags_insert", "adapters_tags_update", "adapters_tags_delete")
PG_TAG_TRIGGERS = ("adapters_tags_write", "adapters_tags_update", "adapters_tags_truncate")


def fill_and_install(apps, schema_editor):
    from adapters.db_triggers import TAG_TABLE_FILL, install

    fill = TAG_TABLE_FILL.get(schema_editor.connection.vendor)
    if fill:
        schema_editor.execute(fill)
    install(schema_editor.connection)


def drop_tag_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        for name in TAG_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")
    elif vendor == "postgresql":
        for name in PG_TAG_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON adapters_adapter")
        for name in ("adapters_tags_sync", "adapters_tags_truncate"):
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}()")


class Migration(migrations.Migration):
    dependencies = [("adapters", "0007_catalogue_row_count")]

    operations = [
        migrations.CreateModel(
            name="AdapterTag",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("tag", models.CharField(max_length=64)),
                (
                    "adapter",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="adapters.adapter",
                    ),
                ),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("tag", "adapter"), name="adaptertag_tag_adapter")],
            },
        ),
        migrations.RunPython(fill_and_install, drop_tag_triggers),
    ]
