"""Recovery of orphaned delivery jobs (SPEC 6.2.6): stale running jobs are re-queued or failed, pending jobs that
nobody took are sent again, everything else is left alone. The broker is observed at ``send_task``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.execution import delivery_run
from deliveries.models import DeliveryJob
from deliveries.recovery import delivery_jobs_recover
from loraforge.models.jobs import JobStatus
from tests.deliveries.conftest import make_job
from tests.progress_events import EventRecorder, job_events

pytestmark = pytest.mark.django_db
STALE = 60


@pytest.fixture(autouse=True)
def _limits(settings) -> None:
    settings.LORAFORGE_JOB_STALE_SECONDS = STALE
    settings.LORAFORGE_JOB_MAX_ATTEMPTS = 2


@pytest.fixture
def recorder() -> Iterator[EventRecorder]:
    recorder = EventRecorder()
    yield recorder
    recorder.close()


def running(*, beat_age: float | None, started_age: float = 600, attempts: int = 1, **fields) -> DeliveryJob:
    now = timezone.now()
    beat = None if beat_age is None else now - timedelta(seconds=beat_age)
    return make_job(
        status=JobStatus.RUNNING,
        age=started_age + 1,
        started_at=now - timedelta(seconds=started_age),
        heartbeat_at=beat,
        attempts=attempts,
        worker="dead-worker",
        **fields,
    )


def pending(*, enqueued_age: float | None, age: float = 900) -> DeliveryJob:
    enqueued = None if enqueued_age is None else timezone.now() - timedelta(seconds=enqueued_age)
    return make_job(age=age, enqueued_at=enqueued, celery_task_id="old-task")


def fresh(job: DeliveryJob) -> DeliveryJob:
    job.refresh_from_db()
    return job


# --- stale running jobs ---------------------------------------------------------------------


def test_stale_running_job_with_attempts_left_is_requeued(broker):
    job = running(beat_age=STALE + 5)

    lines = delivery_jobs_recover()

    assert lines == [f"{job.pk} running → pending (attempt 2)"]
    job = fresh(job)
    assert (job.status, job.message, job.worker, job.heartbeat_at) == (
        "pending",
        "Worker lost; re-queued (attempt 2)",
        None,
        None,
    )
    assert broker.job_ids == [str(job.pk)]
    assert job.celery_task_id != "old-task"
    assert job.enqueued_at is not None
    assert job.finished_at is None


def test_requeued_job_is_sent_to_its_queue(broker):
    generation = running(beat_age=STALE + 5, mode="sdnext", params={"generation_params": {}})
    delivery = running(beat_age=STALE + 5, mode="http", params={"host": "hooks.local"})

    delivery_jobs_recover()

    queues = {task.args[0]: task.options["queue"] for task in broker.sent}
    assert queues == {str(generation.pk): "generation", str(delivery.pk): "default"}


def test_requeue_publishes_the_pending_state(broker, recorder):
    job = running(beat_age=STALE + 5)

    delivery_jobs_recover()

    [event] = job_events(recorder.events())
    assert (event["job_id"], event["status"], event["message"]) == (
        str(job.pk),
        "pending",
        "Worker lost; re-queued (attempt 2)",
    )


def test_requeued_job_runs_again_as_attempt_2(broker, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    job = running(beat_age=STALE + 5)
    delivery_jobs_recover()

    delivery_run(job_id=job.pk, worker="new-worker")

    job = fresh(job)
    assert (job.status, job.attempts, job.worker) == ("succeeded", 2, "new-worker")


def test_stale_job_without_attempts_left_fails_with_worker_lost(broker, recorder):
    job = running(beat_age=STALE + 5, attempts=2)

    lines = delivery_jobs_recover()

    message = "Worker lost while running the job; giving up after 2 attempts"
    assert lines == [f"{job.pk} running → failed ({message})"]
    job = fresh(job)
    assert (job.status, job.error, job.error_code, job.message) == ("failed", message, "worker_lost", message)
    assert job.finished_at is not None
    assert broker.sent == []
    [event] = job_events(recorder.events())
    assert (event["status"], event["error"]) == ("failed", message)


def test_the_attempt_limit_follows_the_setting(broker, settings):
    settings.LORAFORGE_JOB_MAX_ATTEMPTS = 3
    job = running(beat_age=STALE + 5, attempts=2)

    assert delivery_jobs_recover() == [f"{job.pk} running → pending (attempt 3)"]


def test_a_fresh_heartbeat_is_left_alone(broker):
    job = running(beat_age=STALE - 10)
    before = fresh(job).updated_at

    assert delivery_jobs_recover() == []

    job = fresh(job)
    assert (job.status, job.worker, job.updated_at) == ("running", "dead-worker", before)
    assert broker.sent == []


def test_without_a_heartbeat_the_start_time_decides(broker):
    stale = running(beat_age=None, started_age=STALE + 5)
    recent = running(beat_age=None, started_age=STALE - 10)

    assert delivery_jobs_recover() == [f"{stale.pk} running → pending (attempt 2)"]
    assert fresh(recent).status == "running"


def test_the_staleness_follows_the_setting(broker, settings):
    settings.LORAFORGE_JOB_STALE_SECONDS = 300
    job = running(beat_age=120)

    assert delivery_jobs_recover() == []
    assert fresh(job).status == "running"


def test_a_redelivered_task_recovers_its_own_stale_job(broker):
    job = running(beat_age=STALE + 5)

    delivery_run(job_id=job.pk, worker="other-worker")

    job = fresh(job)
    assert (job.status, job.message) == ("pending", "Worker lost; re-queued (attempt 2)")
    assert broker.job_ids == [str(job.pk)]


def test_a_redelivered_task_leaves_a_live_job_to_its_worker(broker):
    job = running(beat_age=1)

    delivery_run(job_id=job.pk, worker="other-worker")

    job = fresh(job)
    assert (job.status, job.worker, job.attempts) == ("running", "dead-worker", 1)
    assert broker.sent == []


# --- pending jobs ---------------------------------------------------------------------------


def test_pending_job_not_taken_for_300_s_is_requeued(broker):
    job = pending(enqueued_age=301)
    before = fresh(job).enqueued_at

    assert delivery_jobs_recover() == [f"{job.pk} pending → re-queued"]

    job = fresh(job)
    assert broker.job_ids == [str(job.pk)]
    assert job.status == "pending"
    assert job.enqueued_at > before
    assert delivery_jobs_recover() == []  # just sent again


def test_pending_job_never_enqueued_is_sent_once_it_is_old(broker):
    old, new = pending(enqueued_age=None, age=301), pending(enqueued_age=None, age=10)

    delivery_jobs_recover()

    assert broker.job_ids == [str(old.pk)]
    assert fresh(new).status == "pending"


def test_recently_enqueued_pending_job_is_left_alone(broker):
    job = pending(enqueued_age=250)

    assert delivery_jobs_recover() == []
    assert broker.sent == []
    assert fresh(job).celery_task_id == "old-task"


def test_every_pending_job_is_requeued_after_an_empty_broker_started(broker):
    jobs = [pending(enqueued_age=5, age=5), pending(enqueued_age=400)]

    lines = delivery_jobs_recover(requeue_all_pending=True)

    assert sorted(broker.job_ids) == sorted(str(job.pk) for job in jobs)
    assert len(lines) == 2


# --- terminal jobs and dry runs -------------------------------------------------------------


@pytest.mark.parametrize("state", [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_terminal_jobs_are_never_touched(broker, state):
    long_ago = timezone.now() - timedelta(hours=2)
    job = make_job(status=state, age=7200, heartbeat_at=long_ago, enqueued_at=long_ago, attempts=1)
    before = fresh(job)

    assert delivery_jobs_recover(requeue_all_pending=True) == []

    after = fresh(job)
    assert (after.status, after.updated_at, after.error, after.finished_at) == (
        before.status,
        before.updated_at,
        before.error,
        before.finished_at,
    )
    assert broker.sent == []


def test_dry_run_reports_and_writes_nothing(broker, recorder):
    requeued = running(beat_age=STALE + 5)
    failed = running(beat_age=STALE + 5, attempts=2)
    waiting = pending(enqueued_age=400)
    snapshot = {job.pk: fresh(job).updated_at for job in (requeued, failed, waiting)}

    lines = delivery_jobs_recover(dry_run=True)

    assert sorted(lines) == sorted(
        [
            f"{requeued.pk} running → pending (attempt 2)",
            f"{failed.pk} running → failed (Worker lost while running the job; giving up after 2 attempts)",
            f"{waiting.pk} pending → re-queued",
        ]
    )
    assert {job.pk: job.updated_at for job in DeliveryJob.objects.all()} == snapshot
    assert DeliveryJob.objects.filter(status=JobStatus.RUNNING).count() == 2
    assert broker.sent == []
    assert recorder.events() == []
