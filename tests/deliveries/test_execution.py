"""The task body every delivery runs through (SPEC 6.2.2, 6.2.5, 6.2.6): idempotency, a mode without a runner,
a runner that crashes or exceeds its time limit, a redelivered task, the heartbeat thread, duration estimates."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from deliveries import runner_registry
from deliveries.execution import TIME_LIMIT_EXCEEDED, UNEXPECTED_ERROR, delivery_run, heartbeat_ticker
from deliveries.models import DeliveryJob
from deliveries.selectors import estimated_duration
from loraforge.models.jobs import JobStatus
from tests.deliveries.conftest import make_job
from tests.progress_events import EventRecorder, job_events


class ScriptedRunner:
    """A runner whose ``run`` does what the test says (the registry is the seam the apps plug into)."""

    queue = "default"

    def __init__(self, mode: str, action: Any) -> None:
        self.mode = mode
        self.action = action
        self.calls: list[str] = []

    def run(self, job: DeliveryJob, *, worker: str) -> None:
        self.calls.append(str(job.pk))
        job.start(worker=worker)
        self.action()

    def release(self, job: DeliveryJob) -> None:
        self.calls.append(f"release {job.pk}")

    def time_limit(self, job: DeliveryJob) -> int:
        return 60


@pytest.fixture
def scripted():
    registered: list[str] = []

    def register(mode: str, action: Any) -> ScriptedRunner:
        runner = ScriptedRunner(mode, action)
        runner_registry.runner_register(runner)
        registered.append(mode)
        return runner

    yield register
    for mode in registered:
        runner_registry._runners.pop(mode, None)


def _raise(exc: BaseException) -> Any:
    def action() -> None:
        raise exc

    return action


@pytest.mark.django_db
def test_a_mode_without_a_runner_fails_the_job():
    recorder = EventRecorder()
    job = make_job(mode="carrier-pigeon")
    delivery_run(job_id=job.pk, worker="w1")
    job.refresh_from_db()
    assert (job.status, job.error_code, job.error) == (
        "failed",
        "no_runner",
        "No runner for delivery mode 'carrier-pigeon'",
    )
    assert [event["status"] for event in job_events(recorder.events())] == ["failed"]
    recorder.close()


@pytest.mark.django_db
def test_a_crashing_runner_fails_the_job_without_leaking_the_exception(scripted):
    scripted("crash", _raise(RuntimeError("boom: secret detail")))
    job = make_job(mode="crash")
    delivery_run(job_id=job.pk, worker="w1")
    job.refresh_from_db()
    assert (job.status, job.error_code, job.error) == ("failed", "internal_error", UNEXPECTED_ERROR)
    assert "secret" not in job.error


@pytest.mark.django_db
def test_a_runner_past_its_soft_time_limit_fails_the_job(scripted):
    scripted("slow", _raise(SoftTimeLimitExceeded()))
    job = make_job(mode="slow")
    delivery_run(job_id=job.pk, worker="w1")
    job.refresh_from_db()
    assert (job.status, job.error_code, job.error) == ("failed", "task_timeout", TIME_LIMIT_EXCEEDED)
    assert job.finished_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_a_finished_job_is_left_alone(scripted, status):
    runner = scripted("noop", lambda: None)
    job = make_job(mode="noop", status=status)
    before = DeliveryJob.objects.values().get(pk=job.pk)
    delivery_run(job_id=job.pk, worker="w1")
    assert runner.calls == []
    assert DeliveryJob.objects.values().get(pk=job.pk) == before


@pytest.mark.django_db
def test_a_redelivered_task_leaves_a_job_with_a_fresh_heartbeat_to_its_worker(scripted):
    runner = scripted("noop", lambda: None)
    job = make_job(mode="noop", status=JobStatus.RUNNING, attempts=1, heartbeat_at=timezone.now(), worker="w1")
    delivery_run(job_id=job.pk, worker="w2")
    job.refresh_from_db()
    assert (job.status, job.worker, job.attempts) == ("running", "w1", 1)
    assert runner.calls == []


@pytest.mark.django_db
def test_a_redelivered_task_recovers_its_orphaned_job(scripted, broker, settings):
    settings.LORAFORGE_JOB_STALE_SECONDS = 60
    runner = scripted("noop", lambda: None)
    stale = timezone.now() - timedelta(seconds=120)
    job = make_job(mode="noop", status=JobStatus.RUNNING, attempts=1, heartbeat_at=stale, started_at=stale)
    delivery_run(job_id=job.pk, worker="w2")
    job.refresh_from_db()
    assert (job.status, job.message) == ("pending", "Worker lost; re-queued (attempt 2)")
    assert runner.calls == [f"release {job.pk}"]
    assert broker.job_ids == [str(job.pk)]


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_renews_a_running_job_and_stops_when_it_ends():
    job = make_job(status=JobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=5))
    with heartbeat_ticker(job, interval=0.05):
        deadline = time.monotonic() + 5
        while DeliveryJob.objects.get(pk=job.pk).heartbeat_at < timezone.now() - timedelta(minutes=1):
            assert time.monotonic() < deadline, "the heartbeat was never renewed"
            time.sleep(0.02)
        DeliveryJob.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLED)
        time.sleep(0.2)
        after_cancel = DeliveryJob.objects.get(pk=job.pk).heartbeat_at
        time.sleep(0.2)
        assert DeliveryJob.objects.get(pk=job.pk).heartbeat_at == after_cancel  # no writes to a finished job


def _finished_generation(seconds: float, *, width: int = 512, steps: int = 20, status: str = "succeeded") -> None:
    started = timezone.now() - timedelta(minutes=10)
    params = {"generation_params": {"width": width, "height": 512, "steps": steps}}
    make_job(
        mode="sdnext",
        status=status,
        params=params,
        started_at=started,
        finished_at=started + timedelta(seconds=seconds),
    )


@pytest.mark.django_db
def test_the_estimate_is_the_mean_duration_of_recent_alike_generations():
    for seconds in (2.0, 4.0, 6.0):
        _finished_generation(seconds)
    _finished_generation(100.0, width=1024)  # other size
    _finished_generation(100.0, steps=30)  # other steps
    _finished_generation(100.0, status="failed")  # not succeeded
    job = make_job(mode="sdnext", params={"generation_params": {"width": 512, "height": 512, "steps": 20}})
    assert estimated_duration(job) == 4.0


@pytest.mark.django_db
def test_no_estimate_without_history():
    job = make_job(mode="sdnext", params={"generation_params": {"width": 512, "height": 512, "steps": 20}})
    assert estimated_duration(job) is None
