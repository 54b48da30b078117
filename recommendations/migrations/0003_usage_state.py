"""``UsageState``: a version the delivery jobs' and links' triggers bump whenever the co-usage history changes
(``recommendations/usage_triggers.py``), so a process can keep co-usage in memory and know when it is stale."""

from django.db import migrations, models


def install(apps, schema_editor):
    from recommendations.usage_triggers import install as install_triggers

    install_triggers(schema_editor.connection)


def uninstall(apps, schema_editor):
    from recommendations.usage_triggers import uninstall as uninstall_triggers

    uninstall_triggers(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("recommendations", "0002_embedding_state"), ("deliveries", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="UsageState",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ("version", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(install, uninstall),
    ]
