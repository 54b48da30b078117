"""BackgroundJob services (SPEC 6.2, 6.5): events, recovery, reporters, snapshots."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from loraforge.jobs import reporters, snapshots
from loraforge.jobs.background import background_job_create, job_cancel, job_event_data, job_start, job_succeed
from loraforge.jobs.recovery import WORKER_LOST, background_jobs_recover
from loraforge.jobs.reporters import ConsoleProgress, JobProgressReporter, ProgressTee
from loraforge.models import BackgroundJob
from tests.progress_events import EventRecorder, job_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorder():
    recorder = EventRecorder()
    yield recorder
    recorder.close()


def running_job(*, heartbeat_seconds_ago: float = 0, kind: str = "scan") -> BackgroundJob:
    moment = timezone.now() - timedelta(seconds=heartbeat_seconds_ago)
    return BackgroundJob.objects.create(kind=kind, status="running", started_at=moment, heartbeat_at=moment)


# --- events ---------------------------------------------------------------------------------------


def test_event_of_a_finished_scan_carries_the_report_without_items(recorder):
    job = running_job()
    report = {"created": 1, "errors": 0, "items": [{"path": "/x", "status": "created"}], "items_truncated": False}
    assert job_succeed(job, report, message="Scanned 1 file")
    [event] = recorder.events()
    assert event == {
        "type": "job_progress",
        "timestamp": event["timestamp"],
        "data": {
            "job_id": str(job.pk),
            "kind": "scan",
            "status": "succeeded",
            "progress": 1.0,
            "message": "Scanned 1 file",
            "result": {"created": 1, "errors": 0},
            "error": None,
            "snapshot": False,
        },
    }
    job_events([event])  # the envelope and its timestamp format


def test_event_of_an_active_job_has_no_result():
    job = running_job()
    job.result = {"partial": True}
    assert job_event_data(job)["result"] is None


def test_creation_publishes_pending_once_committed(recorder, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = background_job_create(kind="scan", params={"dry_run": True}, created_via="api")
        assert recorder.events() == []
    assert job_events(recorder.events()) == [
        {
            "job_id": str(job.pk),
            "kind": "scan",
            "status": "pending",
            "progress": 0.0,
            "message": "",
            "result": None,
            "error": None,
            "snapshot": False,
        }
    ]


def test_a_write_that_loses_publishes_nothing(recorder):
    job = running_job()
    BackgroundJob.objects.filter(pk=job.pk).update(status="cancelled")
    assert not job_succeed(job, {"created": 0})
    assert not job_start(job)
    assert recorder.events() == []
    job.refresh_from_db()
    assert job.status == "cancelled"


def test_cancel_of_a_job_that_started_meanwhile_still_cancels(recorder):
    job = BackgroundJob.objects.create(kind="scan")
    BackgroundJob.objects.filter(pk=job.pk).update(status="running")  # the worker took it after we read it
    assert job_cancel(job=job).status == "cancelled"
    assert [event["status"] for event in job_events(recorder.events())] == ["cancelled"]


# --- recovery -------------------------------------------------------------------------------------


def test_running_job_with_a_stale_heartbeat_fails(recorder, settings):
    settings.LORAFORGE_JOB_STALE_SECONDS = 60
    stale = running_job(heartbeat_seconds_ago=61)
    fresh = running_job(heartbeat_seconds_ago=10)
    assert background_jobs_recover() == [f"{stale.pk} running → failed (Worker lost while running the job)"]
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.status, stale.error) == ("failed", "Worker lost while running the job")
    assert stale.finished_at is not None
    assert fresh.status == "running"
    [event] = job_events(recorder.events())
    assert (event["job_id"], event["status"], event["error"]) == (str(stale.pk), "failed", WORKER_LOST)


def test_dry_run_recovery_changes_nothing(settings):
    settings.LORAFORGE_JOB_STALE_SECONDS = 60
    stale = running_job(heartbeat_seconds_ago=600)
    assert len(background_jobs_recover(dry_run=True)) == 1
    stale.refresh_from_db()
    assert stale.status == "running"


def test_pending_job_nobody_took_is_queued_again_at_most_every_300_s(sent_tasks):
    old = BackgroundJob.objects.create(kind="scan", created_at=timezone.now() - timedelta(seconds=301))
    BackgroundJob.objects.create(kind="scan")  # just created: its message is on its way
    BackgroundJob.objects.create(kind="export", created_at=timezone.now() - timedelta(hours=1))  # no task known
    assert background_jobs_recover() == [f"{old.pk} pending → re-queued"]
    assert [(name, args) for name, args, _options in sent_tasks] == [("adapters.scan_library", [str(old.pk)])]
    old.refresh_from_db()
    assert old.celery_task_id == "task-1"
    assert background_jobs_recover() == []  # re-sent just now


def test_every_pending_job_is_queued_again_after_an_in_memory_broker_restart(sent_tasks):
    job = BackgroundJob.objects.create(kind="scan")
    background_jobs_recover(requeue_all_pending=True)
    assert [args for _name, args, _options in sent_tasks] == [[str(job.pk)]]


def test_requeue_failure_fails_the_job(monkeypatch):
    from kombu.exceptions import OperationalError

    def refuse(name, args, **options):
        raise OperationalError("broker down")

    monkeypatch.setattr("loraforge.celery.app.send_task", refuse)
    job = BackgroundJob.objects.create(kind="scan", created_at=timezone.now() - timedelta(hours=1))
    background_jobs_recover()
    job.refresh_from_db()
    assert (job.status, job.error) == ("failed", "Task queue unavailable")


def test_recovery_task_is_scheduled_every_minute():
    from loraforge.celery import app

    entry = app.conf.beat_schedule["recover-jobs"]
    assert (entry["task"], entry["schedule"]) == ("loraforge.recover_jobs", 60.0)
    app.loader.import_default_modules()  # what a worker does when it starts
    assert "loraforge.recover_jobs" in app.tasks


# --- the job reporter -----------------------------------------------------------------------------


def test_reporter_writes_progress_and_message_per_file(recorder, monkeypatch):
    monkeypatch.setattr(reporters, "PROGRESS_INTERVAL", 0.0)
    job = running_job()
    reporter = JobProgressReporter(job)
    reporter.file_done(path=Path("/l/a.safetensors"), index=1, total=4)
    job.refresh_from_db()
    assert (job.progress, job.message) == (0.25, "Hashing a.safetensors (1/4)")
    [event] = job_events(recorder.events())
    assert event == {
        "job_id": str(job.pk),
        "kind": "scan",
        "status": "running",
        "progress": 0.25,
        "message": "Hashing a.safetensors (1/4)",
        "result": None,
        "error": None,
        "snapshot": False,
    }


def test_reporter_throttles_writes_but_always_writes_the_last_file(recorder, monkeypatch):
    monkeypatch.setattr(reporters, "PROGRESS_INTERVAL", 3600.0)
    job = running_job()
    reporter = JobProgressReporter(job)
    for index in range(1, 4):
        reporter.file_done(path=Path(f"/l/{index}.safetensors"), index=index, total=3)
    assert [event["message"] for event in job_events(recorder.events())] == ["Hashing 3.safetensors (3/3)"]
    job.refresh_from_db()
    assert job.progress == 1.0


def test_reporter_renews_the_heartbeat(monkeypatch):
    monkeypatch.setattr(reporters, "PROGRESS_INTERVAL", 0.0)
    job = running_job(heartbeat_seconds_ago=30)
    before = job.heartbeat_at
    JobProgressReporter(job).file_done(path=Path("/l/a.pt"), index=1, total=2)
    job.refresh_from_db()
    assert job.heartbeat_at > before


def test_reporter_sees_the_cancel(monkeypatch):
    monkeypatch.setattr(reporters, "CANCEL_CHECK_INTERVAL", 0.0)
    job = running_job()
    reporter = JobProgressReporter(job)
    assert reporter.cancelled() is False
    job_cancel(job=job)
    assert reporter.cancelled() is True


def test_reporter_stops_writing_once_the_job_is_cancelled(recorder, monkeypatch):
    monkeypatch.setattr(reporters, "PROGRESS_INTERVAL", 0.0)
    job = running_job()
    job_cancel(job=job)
    recorder.events()
    reporter = JobProgressReporter(job)
    reporter.file_done(path=Path("/l/a.pt"), index=1, total=2)
    assert reporter.cancelled() is True
    assert recorder.events() == []
    job.refresh_from_db()
    assert (job.status, job.progress) == ("cancelled", 0.0)


def test_tee_is_cancelled_when_any_reporter_is():
    class Cancelled:
        def planned(self, **kwargs): ...
        def bytes_read(self, count): ...
        def file_done(self, **kwargs): ...
        def cancelled(self):
            return True

    console = ConsoleProgress(stream=io.StringIO(), enabled=False)
    assert ProgressTee(console, None).cancelled() is False
    assert ProgressTee(console, Cancelled()).cancelled() is True


# --- the console reporter -------------------------------------------------------------------------


def test_console_progress_draws_a_bar_over_bytes():
    stream = io.StringIO()
    console = ConsoleProgress(stream=stream, enabled=True)
    console.planned(files=1, bytes_to_hash=2048)
    console.bytes_read(2048)
    console.file_done(path=Path("/l/ink.safetensors"), index=1, total=1)
    console.close()
    output = stream.getvalue()
    assert "2.00k" in output or "2.0k" in output
    assert "100%" in output


def test_disabled_console_progress_writes_nothing():
    stream = io.StringIO()
    console = ConsoleProgress(stream=stream, enabled=False)
    console.planned(files=1, bytes_to_hash=2048)
    console.bytes_read(2048)
    console.file_done(path=Path("/l/ink.safetensors"), index=1, total=1)
    console.close()
    assert stream.getvalue() == ""


# --- snapshots ------------------------------------------------------------------------------------


def test_snapshots_of_named_jobs_skip_unknown_ids():
    job = running_job()
    [event] = snapshots.job_snapshots([str(job.pk), "00000000-0000-4000-8000-000000000000"])
    assert event["type"] == "job_progress"
    assert event["data"] == {**job_event_data(job), "snapshot": True}


def test_snapshot_of_all_jobs_lists_at_most_50_active_ones():
    BackgroundJob.objects.bulk_create(BackgroundJob(kind="scan", status="pending") for _ in range(55))
    BackgroundJob.objects.create(kind="scan", status="succeeded")
    events = snapshots.job_snapshots(None)
    assert len(events) == 50
    assert {event["data"]["status"] for event in events} == {"pending"}


def test_snapshots_cover_every_registered_kind_newest_first():
    from deliveries.models import DeliveryJob

    older = BackgroundJob.objects.create(kind="scan", created_at=timezone.now() - timedelta(minutes=1))
    newer = DeliveryJob.objects.create(kind="delivery", mode="http", prompt="x")
    events = snapshots.job_snapshots(None)
    assert [event["data"]["job_id"] for event in events] == [str(newer.pk), str(older.pk)]
    assert all(event["data"]["snapshot"] is True for event in events)


@pytest.mark.django_db(transaction=True)
def test_heartbeat_thread_renews_a_quiet_job(monkeypatch):
    import time

    monkeypatch.setattr(reporters, "HEARTBEAT_SECONDS", 0.0)
    job = running_job(heartbeat_seconds_ago=30)
    before = job.heartbeat_at
    with JobProgressReporter(job):
        deadline = time.monotonic() + 10
        while BackgroundJob.objects.get(pk=job.pk).heartbeat_at == before and time.monotonic() < deadline:
            time.sleep(0.1)
    job.refresh_from_db()
    assert job.heartbeat_at > before
    assert job.status == "running"


@pytest.mark.django_db(transaction=True)
def test_heartbeat_thread_notices_a_cancel(monkeypatch):
    import time

    monkeypatch.setattr(reporters, "HEARTBEAT_SECONDS", 0.0)
    monkeypatch.setattr(reporters, "CANCEL_CHECK_INTERVAL", 3600.0)  # only the heartbeat can tell
    job = running_job()
    with JobProgressReporter(job) as reporter:
        job_cancel(job=job)
        deadline = time.monotonic() + 10
        while not reporter.cancelled() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert reporter.cancelled() is True
