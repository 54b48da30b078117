"""The log of changed jobs the co-usage triggers keep: pruned to its newest rows by a periodic task, the state row
saying how far, and a schema migrated back before it keeps bumping the version without it (on both databases: the
PostgreSQL pass runs this file too)."""

from __future__ import annotations

import threading

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from deliveries.models import DeliveryJob
from recommendations.cousage import window_start
from recommendations.models import UsageChange
from recommendations.services.usage_changes import usage_changes_prune
from recommendations.tasks import PRUNE_USAGE_CHANGES_TASK, prune_usage_changes
from recommendations.usage_history import history_catch_up, history_load, usage_state
from tests.factories import AdapterFactory, link_adapters

pytestmark = pytest.mark.django_db


def succeeded_job(*adapters) -> DeliveryJob:
    row = DeliveryJob.objects.create(kind="generation", mode="sdnext", prompt="p", status="running")
    link_adapters(row, [(adapter, 1.0) for adapter in adapters])
    row.status = "succeeded"
    row.save()  # one change logged
    return row


def test_prune_keeps_the_newest_rows_and_marks_how_far_it_went():
    adapter = AdapterFactory()
    history = history_load(window_start(timezone.now()))
    jobs = [succeeded_job(adapter) for _ in range(5)]
    logged = list(UsageChange.objects.order_by("id").values_list("version", "job_id"))
    assert [job_id for _, job_id in logged] == [job.pk for job in jobs]
    assert usage_changes_prune(keep=2) == 3
    assert list(UsageChange.objects.order_by("id").values_list("version", "job_id")) == logged[3:]
    state = usage_state()
    assert state is not None
    assert state.pruned_through == logged[2][0]
    assert history is not None
    assert history_catch_up(history, state) is None  # older than the pruned changes: loaded again instead
    later = history_load(window_start(timezone.now()))
    assert later is not None
    assert later.version > state.pruned_through
    succeeded_job(adapter)
    caught = history_catch_up(later, usage_state())
    assert caught is not None
    assert caught.partners_of(str(adapter.pk))[2] == 6  # the adapter's six jobs: five loaded, one caught up
    assert usage_changes_prune(keep=2) == 1
    assert usage_changes_prune(keep=2) == 0  # nothing more to prune: the mark stays
    assert usage_state().pruned_through == logged[3][0]


def test_the_prune_task_is_scheduled_and_runs_the_service():
    from loraforge.celery import app

    entry = app.conf.beat_schedule["prune-usage-changes"]
    assert entry["task"] == PRUNE_USAGE_CHANGES_TASK == prune_usage_changes.name
    assert prune_usage_changes.queue == "default"
    assert prune_usage_changes.acks_late
    assert prune_usage_changes.ignore_result
    succeeded_job(AdapterFactory())
    assert prune_usage_changes() == 0  # far fewer rows than it keeps


@pytest.mark.django_db(transaction=True)
def test_migrated_back_before_the_log_the_triggers_still_bump_the_version():
    adapter = AdapterFactory()
    try:
        call_command("migrate", "recommendations", "0003", verbosity=0)
        with connection.cursor() as cursor:
            assert "recommendations_usagechange" not in connection.introspection.table_names(cursor)
            cursor.execute("SELECT version FROM recommendations_usagestate WHERE id = 1")
            before = cursor.fetchone()[0]
            succeeded_job(adapter)
            cursor.execute("SELECT version FROM recommendations_usagestate WHERE id = 1")
            assert cursor.fetchone()[0] != before
    finally:
        call_command("migrate", "recommendations", verbosity=0)
    state = usage_state()
    row = succeeded_job(adapter)  # forward again: logged
    assert list(UsageChange.objects.filter(version__gt=state.version).values_list("job_id", flat=True)) == [row.pk]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_overlapping_writers_take_versions_in_commit_order():
    adapter = AdapterFactory()
    first, second = (DeliveryJob.objects.create(kind="generation", mode="sdnext", prompt="p") for _ in range(2))
    link_adapters(first, [(adapter, 1.0)])
    link_adapters(second, [(adapter, 1.0)])

    def second_writer() -> None:
        try:
            with transaction.atomic():
                DeliveryJob.objects.filter(pk=second.pk).update(status="succeeded")  # waits for the state row
        finally:
            connection.close()

    with transaction.atomic():
        DeliveryJob.objects.filter(pk=first.pk).update(status="succeeded")  # holds the state row until commit
        writer = threading.Thread(target=second_writer)
        writer.start()
        writer.join(0.5)
        assert writer.is_alive()  # the second writer waits
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            assert cursor.fetchone()[0] >= 1
    writer.join(10)
    versions = dict(UsageChange.objects.values_list("job_id", "version"))
    assert versions[first.pk] < versions[second.pk] == usage_state().version
