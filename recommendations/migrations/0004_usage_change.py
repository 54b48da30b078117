"""``UsageChange``: the triggers that bump ``UsageState.version`` log which generation job changed, so a process
keeping the co-usage history in memory catches up instead of loading it again; ``UsageState.pruned_through``
says how far the log was pruned. The triggers are installed again with their new bodies.

SQLite rebuilds the state table to add the column, which it refuses while triggers name that table: they are dropped
first (on PostgreSQL they only stop logging), and put back last."""

from django.db import migrations, models


def unlogged(apps, schema_editor):
    from recommendations.usage_triggers import reinstall, uninstall

    connection = schema_editor.connection
    if connection.vendor == "sqlite":
        uninstall(connection)
    else:
        reinstall(connection, logged=False)


def logged(apps, schema_editor):
    from recommendations.usage_triggers import reinstall

    reinstall(schema_editor.connection, logged=True)


def unlogged_installed(apps, schema_editor):  # the reverse, once the state table is back as it was
    from recommendations.usage_triggers import reinstall

    reinstall(schema_editor.connection, logged=False)


class Migration(migrations.Migration):
    dependencies = [("recommendations", "0003_usage_state")]

    operations = [
        migrations.RunPython(unlogged, unlogged_installed),
        migrations.AddField(model_name="usagestate", name="pruned_through", field=models.BigIntegerField(db_default=0)),
        migrations.CreateModel(
            name="UsageChange",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("version", models.BigIntegerField(db_index=True)),
                ("job_id", models.UUIDField()),
            ],
        ),
        migrations.RunPython(logged, unlogged),
    ]
