"""The co-usage history's version (``recommendations/usage_triggers.py``): every write that changes which adapter
links of succeeded generation jobs exist changes it, whatever made the write; writes that change nothing there
(a running job's progress, a pending job's links, another kind of job) leave it alone. On both databases (the
PostgreSQL pass runs this file too)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from deliveries.models import DeliveryJob, DeliveryJobAdapter
from recommendations.cousage import usage_version
from recommendations.models import UsageChange, UsageState
from recommendations.usage_triggers import install
from tests.factories import AdapterFactory, link_adapters

pytestmark = pytest.mark.django_db


class Versions:
    def __init__(self) -> None:
        self.seen = [self.now()]

    @staticmethod
    def now() -> int:
        version = usage_version()
        assert version is not None
        return version

    def changed(self, *jobs: DeliveryJob | uuid.UUID) -> None:
        """The version moved on, and the log names exactly ``jobs`` since the last version seen."""
        now = self.now()
        assert now not in self.seen
        assert now > self.seen[-1]  # the versions follow the commits
        logged = UsageChange.objects.filter(version__gt=self.seen[-1], version__lte=now)
        assert set(logged.values_list("job_id", flat=True)) == {getattr(row, "pk", row) for row in jobs}
        self.seen.append(now)

    def same(self) -> None:
        assert usage_version() == self.seen[-1]
        assert not UsageChange.objects.filter(version__gt=self.seen[-1]).exists()


def job(*adapters, status: str = "running", kind: str = "generation") -> DeliveryJob:
    row = DeliveryJob.objects.create(kind=kind, mode="sdnext", prompt="p", status=status)
    link_adapters(row, [(adapter, 1.0) for adapter in adapters])
    return row


def link(row: DeliveryJob, adapter, position: int = 5) -> None:
    DeliveryJobAdapter.objects.create(
        job=row, adapter=adapter, adapter_name=adapter.name, sdnext_name=adapter.sdnext_name, weight=1.0,
        position=position,
    )  # fmt: skip


def test_a_job_that_succeeds_fails_or_moves_changes_the_version():
    first, second = AdapterFactory(), AdapterFactory()
    versions = Versions()
    running = job(first, second)  # a running job and its links: nothing to count yet
    versions.same()
    DeliveryJob.objects.filter(pk=running.pk).update(progress=0.5, message="step 10/20")
    versions.same()
    running.status = "succeeded"
    running.save()  # a model save
    versions.changed(running)
    DeliveryJob.objects.filter(pk=running.pk).update(progress=1.0)  # nothing counted changed
    versions.same()
    DeliveryJob.objects.filter(pk=running.pk).update(created_at=timezone.now() - timedelta(days=200))
    versions.changed(running)
    DeliveryJob.objects.filter(pk=running.pk).update(status="failed")  # a queryset update
    versions.changed(running)
    DeliveryJob.objects.filter(pk=running.pk).update(status="cancelled")  # neither side counted
    versions.same()


def test_links_of_a_succeeded_job_change_the_version_and_others_do_not():
    first, second, third = AdapterFactory(), AdapterFactory(), AdapterFactory()
    done = job(first, status="succeeded")
    delivery = job(first, status="succeeded", kind="delivery")
    versions = Versions()
    DeliveryJobAdapter.objects.create(
        job=delivery, adapter=second, adapter_name="b", sdnext_name="b", weight=1.0, position=5
    )
    versions.same()
    DeliveryJobAdapter.objects.create(
        job=done, adapter=second, adapter_name="b", sdnext_name="b", weight=1.0, position=5
    )
    versions.changed(done)
    with connection.cursor() as cursor:  # raw SQL
        table = DeliveryJobAdapter._meta.db_table
        job_id = DeliveryJob._meta.pk.get_db_prep_value(done.pk, connection)
        cursor.execute(f"UPDATE {table} SET weight = 0.5 WHERE job_id = %s", [job_id])  # noqa: S608
    versions.changed(done)
    third.delete()  # not linked: nothing
    versions.same()
    second.delete()  # its links lose their adapter (SET NULL): the delivery's does not count
    versions.changed(done)
    done_id = done.pk
    done.delete()  # the job and its links
    versions.changed(done_id)
    inserted = DeliveryJob.objects.create(kind="generation", mode="sdnext", prompt="p", status="succeeded")
    versions.changed(inserted)  # a restore's insert
    assert usage_version() == versions.seen[-1]  # reading it changes nothing


def test_install_puts_back_the_state_row_and_the_triggers():
    adapter = AdapterFactory()
    UsageState.objects.all().delete()  # as ``flush`` leaves it
    assert usage_version() is None
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER recommendations_usage_jobs_update")
    install(connection)
    first = usage_version()
    assert first is not None
    DeliveryJob.objects.filter(pk=job(adapter).pk).update(status="succeeded")
    assert usage_version() != first
