"""The rollups stay equal to a from-scratch aggregate (``rollups_rebuild``) through every kind of write."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import time_machine

from adapters.models import Adapter
from analytics.models import AdapterDayRollup, AdapterHourRollup, JobErrorHourRollup, JobHourRollup
from analytics.rollups import rollups_rebuild
from deliveries.models import DeliveryJob, DeliveryJobAdapter
from tests.analytics.report_jobs import NOW, make_job, rollup_rows
from tests.factories import AdapterFactory, link_adapters

pytestmark = pytest.mark.django_db


def assert_exact() -> None:
    incremental = rollup_rows()
    rollups_rebuild()
    assert rollup_rows() == incremental


@pytest.fixture
def adapters() -> list[Adapter]:
    return AdapterFactory.create_batch(3)


def test_inserts_count_generation_jobs_per_hour(adapters):
    make_job(NOW, "succeeded", seconds=2.5, adapters=adapters[:2])
    make_job(NOW + timedelta(minutes=10), "failed", error_code="timeout", error="t/o", adapters=adapters[1:])
    make_job(NOW - timedelta(hours=3), "cancelled")
    make_job(NOW, "succeeded", kind="delivery", adapters=adapters)
    row = JobHourRollup.objects.get(bucket=NOW.replace(minute=0))
    assert (row.total, row.succeeded, row.failed, row.duration_us, row.duration_count) == (2, 1, 1, 2_500_000, 1)
    day = AdapterDayRollup.objects.get(adapter_id=adapters[1].pk)
    assert (day.total, day.succeeded, day.failed) == (2, 1, 1)
    assert_exact()


def test_bulk_inserts_are_counted(adapters):
    jobs = DeliveryJob.objects.bulk_create(
        DeliveryJob(kind="generation", mode="sdnext", prompt="p", status="failed", error_code="x", error="boom",
                    created_at=NOW - timedelta(minutes=7 * index))
        for index in range(40)
    )  # fmt: skip
    for job in jobs:
        link_adapters(job, [(adapters[0], 1.0), (adapters[0], 0.5)])
    assert sum(JobHourRollup.objects.values_list("total", flat=True)) == 40
    assert sum(AdapterDayRollup.objects.values_list("total", flat=True)) == 40  # a job counts once per adapter
    assert_exact()


def test_status_transitions_move_counts_and_durations(adapters):
    with time_machine.travel(NOW, tick=False) as clock:
        job = make_job(NOW, "pending", adapters=adapters)
        job.start(worker="w")
        clock.shift(timedelta(seconds=4))
        job.set_progress(progress=0.5)
        job.succeed(result={})
        second = make_job(NOW, "pending", adapters=adapters[:1])
        second.start(worker="w")
        second.fail(error="boom", error_code="backend_error")
        third = make_job(NOW, "pending")
        third.cancel()
    row = JobHourRollup.objects.get()
    assert (row.total, row.pending, row.running, row.succeeded, row.failed, row.cancelled) == (3, 0, 0, 1, 1, 1)
    assert row.duration_us == 4_000_000
    assert_exact()


def test_job_deletes_remove_their_counts(adapters):
    keep = make_job(NOW, "failed", error_code="x", error="old", adapters=adapters)
    newest = make_job(NOW + timedelta(minutes=5), "failed", error_code="x", error="old", adapters=adapters)
    newest.delete()
    error = JobErrorHourRollup.objects.get()
    assert (error.count, error.last_created_at) == (1, keep.created_at)
    keep.delete()
    assert not JobErrorHourRollup.objects.exists()
    assert_exact()


def test_link_inserts_and_deletes(adapters):
    job = make_job(NOW, "succeeded", adapters=[adapters[0], adapters[0], adapters[1]])
    DeliveryJobAdapter.objects.filter(job=job, position=0).delete()
    assert_exact()
    DeliveryJobAdapter.objects.filter(job=job, adapter=adapters[0]).delete()
    assert not AdapterDayRollup.objects.filter(adapter_id=adapters[0].pk, total__gt=0).exists()
    assert_exact()


def test_link_updates_move_the_adapter(adapters):
    job = make_job(NOW, "succeeded", adapters=[adapters[0]])
    DeliveryJobAdapter.objects.filter(job=job).update(adapter=adapters[2])
    assert AdapterDayRollup.objects.get(adapter_id=adapters[2].pk).total == 1
    assert_exact()


def test_adapter_deletes_drop_its_usage(adapters):
    make_job(NOW, "succeeded", adapters=adapters)
    make_job(NOW - timedelta(days=2), "failed", adapters=adapters[:1])
    adapters[0].delete()
    assert not AdapterDayRollup.objects.filter(adapter_id=adapters[0].pk, total__gt=0).exists()
    assert_exact()


def test_field_edits_move_rows_between_buckets(adapters):
    job = make_job(NOW, "failed", error_code=None, error=None, adapters=adapters)
    DeliveryJob.objects.filter(pk=job.pk).update(created_at=NOW - timedelta(days=3), error="late text")
    DeliveryJob.objects.filter(pk=job.pk).update(kind="delivery")
    assert_exact()
    DeliveryJob.objects.filter(pk=job.pk).update(kind="generation", error_code="e2")
    assert JobErrorHourRollup.objects.get().error_code == "e2"
    assert_exact()


def test_progress_writes_change_nothing(adapters):
    job = make_job(NOW, "running", adapters=adapters)
    before = rollup_rows()
    job.set_progress(progress=0.3, message="step")
    job.heartbeat()
    assert rollup_rows() == before


def test_rebuild_equals_incremental_on_a_mixed_history(adapters):
    statuses = ["pending", "running", "succeeded", "failed", "cancelled"]
    for index in range(60):
        make_job(
            NOW - timedelta(minutes=37 * index), statuses[index % 5], seconds=index / 7 if index % 3 else None,
            error_code=[None, "a", "b"][index % 3], error=[None, "x", "y", "x"][index % 4],
            adapters=adapters[: index % 4],
        )  # fmt: skip
    assert_exact()


def test_install_is_idempotent_and_restores_dropped_triggers(adapters):
    from django.db import connection

    from analytics.db_triggers import install, uninstall

    uninstall(connection)
    make_job(NOW, "succeeded", adapters=adapters)  # not counted: no triggers
    assert not JobHourRollup.objects.exists()
    install(connection)
    install(connection)
    make_job(NOW, "failed", error_code="x", adapters=adapters)
    assert JobHourRollup.objects.get().total == 1
    rollups_rebuild()
    assert JobHourRollup.objects.get().total == 2
    assert_exact()


def test_rebuild_analytics_command_restores_rollups_written_around_the_triggers(adapters):
    from django.core.management import call_command

    make_job(NOW, "succeeded", seconds=4, adapters=adapters[:2])
    make_job(NOW - timedelta(hours=1), "failed", error_code="timeout", error="t/o", adapters=adapters[2:])
    expected = rollup_rows()
    JobHourRollup.objects.all().delete()
    AdapterDayRollup.objects.all().delete()
    JobErrorHourRollup.objects.all().delete()
    assert rollup_rows() != expected
    out = io.StringIO()
    call_command("rebuild_analytics", stdout=out)
    assert rollup_rows() == expected
    assert out.getvalue().startswith("Analytics rollups rebuilt in ")


def test_jobs_deleted_after_their_rollups_leave_no_negative_rows(adapters):
    # Django's flush deletes table by table in name order: the analytics rollups go before the deliveries.
    make_job(NOW, "succeeded", seconds=3, adapters=adapters[:2])
    make_job(NOW, "failed", error_code="timeout", error="t/o", adapters=adapters[1:])
    for model in (JobHourRollup, JobErrorHourRollup, AdapterHourRollup, AdapterDayRollup):
        model.objects.all().delete()
    DeliveryJob.objects.all().delete()
    assert not any(
        model.objects.exists() for model in (JobHourRollup, JobErrorHourRollup, AdapterHourRollup, AdapterDayRollup)
    )


@pytest.mark.django_db(transaction=True)
def test_a_flush_empties_the_rollups(adapters):
    from django.core.management import call_command

    make_job(NOW, "succeeded", seconds=3, adapters=adapters[:2])
    make_job(NOW - timedelta(hours=2), "failed", error_code="timeout", error="t/o", adapters=adapters)
    call_command("flush", interactive=False, verbosity=0)
    assert rollup_rows() == {"jobs": [], "errors": [], "adapter_hours": [], "adapter_days": []}


def test_a_suspended_bulk_load_ends_with_exact_rollups_and_the_triggers_on(adapters):
    from django.db import transaction

    from analytics.rollups import rollups_suspended

    make_job(NOW, "succeeded", seconds=1.0, adapters=adapters[:1])
    with transaction.atomic(), rollups_suspended():
        make_job(NOW, "failed", error_code="timeout", error="t/o", adapters=adapters[1:])
        make_job(NOW - timedelta(days=2), "succeeded", seconds=3.0, adapters=adapters)
        assert JobHourRollup.objects.get(bucket=NOW.replace(minute=0)).total == 1, "the triggers are off meanwhile"
    assert JobHourRollup.objects.get(bucket=NOW.replace(minute=0)).total == 2
    make_job(NOW, "succeeded", seconds=1.0, adapters=adapters[:2])
    assert JobHourRollup.objects.get(bucket=NOW.replace(minute=0)).total == 3, "and on again after"
    assert_exact()


def test_a_failed_bulk_load_rolls_the_switch_back_with_its_rows(adapters):
    from django.db import transaction

    from analytics.rollups import rollups_suspended

    def failed_load() -> None:
        with transaction.atomic(), rollups_suspended():
            make_job(NOW, "succeeded", seconds=1.0, adapters=adapters[:1])
            raise RuntimeError("the load failed")

    with pytest.raises(RuntimeError):
        failed_load()
    assert not DeliveryJob.objects.exists()
    make_job(NOW, "succeeded", seconds=1.0, adapters=adapters[:1])
    assert JobHourRollup.objects.get(bucket=NOW.replace(minute=0)).total == 1, "the triggers are still on"
    assert_exact()
