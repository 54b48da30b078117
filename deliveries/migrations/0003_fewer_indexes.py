"""Three redundant indexes of the jobs and links tables dropped (issue 13): each was the leading column of a
composite index that serves the same lookups, and every job and link inserted paid for one more B-tree (a restore
inserts a million jobs and three million links).

- ``deliveries_deliveryjob.kind``: served by ``delivery_kind_created`` (kind, created_at).
- ``deliveries_deliveryjobadapter.job_id``: served by the unique ``delivery_adapter_job_position`` (job_id, position).
- ``deliveries_deliveryjobadapter.adapter_id``: served by ``delivery_adapter_adapter_job`` (adapter_id, job_id).

Dropped by name, not by ``AlterField``: on SQLite that would rebuild the tables and lose the analytics triggers.
"""

from django.db import migrations, models

JOBS, LINKS = "deliveries_deliveryjob", "deliveries_deliveryjobadapter"


def _drop(model_name: str, field_name: str, field: models.Field, table: str, index: str, column: str):
    return migrations.SeparateDatabaseAndState(
        state_operations=[migrations.AlterField(model_name=model_name, name=field_name, field=field)],
        database_operations=[
            migrations.RunSQL(
                f'DROP INDEX IF EXISTS "{index}"',
                reverse_sql=f'CREATE INDEX IF NOT EXISTS "{index}" ON "{table}" ("{column}")',
            )
        ],
    )


class Migration(migrations.Migration):
    dependencies = [
        ("adapters", "0009_fewer_indexes_partial_duplicates"),
        ("deliveries", "0002_status_finished_index"),
    ]

    operations = [
        _drop(
            "deliveryjob",
            "kind",
            models.CharField(choices=[("generation", "Generation"), ("delivery", "Delivery")], max_length=16),
            JOBS,
            "deliveries_deliveryjob_kind_1f913512",
            "kind",
        ),
        _drop(
            "deliveryjobadapter",
            "job",
            models.ForeignKey(
                db_index=False,
                on_delete=models.deletion.CASCADE,
                related_name="adapter_links",
                to="deliveries.deliveryjob",
            ),
            LINKS,
            "deliveries_deliveryjobadapter_job_id_52d10f29",
            "job_id",
        ),
        _drop(
            "deliveryjobadapter",
            "adapter",
            models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=models.deletion.SET_NULL,
                related_name="job_links",
                to="adapters.adapter",
            ),
            LINKS,
            "deliveries_deliveryjobadapter_adapter_id_17862cc3",
            "adapter_id",
        ),
    ]
