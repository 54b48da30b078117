"""``manage.py recover_jobs [--dry-run]`` (SPEC 8, 6.2.6)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from deliveries.models import DeliveryJob
from loraforge.models import BackgroundJob
from loraforge.models.jobs import JobStatus
from tests.deliveries.conftest import make_job

pytestmark = pytest.mark.django_db


def recover(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("recover_jobs", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def orphans(settings):
    settings.LORAFORGE_JOB_STALE_SECONDS = 60
    settings.LORAFORGE_JOB_MAX_ATTEMPTS = 2
    long_ago = timezone.now() - timedelta(minutes=10)
    running = {"status": JobStatus.RUNNING, "age": 700, "started_at": long_ago, "heartbeat_at": long_ago}
    return {
        "requeue": make_job(attempts=1, **running),
        "fail": make_job(attempts=2, **running),
        "resend": make_job(age=700, enqueued_at=long_ago),
        "scan": BackgroundJob.objects.create(
            kind="scan", status=JobStatus.RUNNING, started_at=long_ago, heartbeat_at=long_ago
        ),
    }


def expected_lines(orphans) -> set[str]:
    return {
        f"{orphans['requeue'].pk} running → pending (attempt 2)",
        f"{orphans['fail'].pk} running → failed (Worker lost while running the job; giving up after 2 attempts)",
        f"{orphans['resend'].pk} pending → re-queued",
        f"{orphans['scan'].pk} running → failed (Worker lost while running the job)",
    }


def test_prints_one_line_per_affected_job(orphans, broker):
    make_job(status=JobStatus.SUCCEEDED, age=700)
    make_job(status=JobStatus.RUNNING, heartbeat_at=timezone.now(), started_at=timezone.now(), attempts=1)

    out, err = recover()

    assert set(out.splitlines()) == expected_lines(orphans)
    assert len(out.splitlines()) == 4
    assert err.strip() == "4 job(s) recovered."
    statuses = {name: type(job).objects.get(pk=job.pk).status for name, job in orphans.items()}
    assert statuses == {"requeue": "pending", "fail": "failed", "resend": "pending", "scan": "failed"}
    assert sorted(broker.job_ids) == sorted([str(orphans["requeue"].pk), str(orphans["resend"].pk)])


def test_dry_run_writes_nothing(orphans, broker):
    before = {job.pk: (job.status, job.updated_at) for job in DeliveryJob.objects.all()}

    out, err = recover("--dry-run")

    assert set(out.splitlines()) == expected_lines(orphans)
    assert "nothing was changed" in err
    assert {job.pk: (job.status, job.updated_at) for job in DeliveryJob.objects.all()} == before
    assert BackgroundJob.objects.get(pk=orphans["scan"].pk).status == "running"
    assert broker.sent == []


def test_nothing_to_recover_prints_nothing(broker):
    make_job()

    out, err = recover()

    assert out == ""
    assert err.strip() == "0 job(s) recovered."


def test_unknown_option_is_a_usage_error():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("recover_jobs", "--bogus")
