"""The job core (SPEC 6.2, issue 10): every guarantee once against each registered kind of job.

Each kind registered with ``loraforge.jobs.registry`` needs a driver here (how to make a row of it, run its
transitions, cancel it through its service and run its task body): a kind added without one fails
``test_every_registered_kind_has_a_driver``. The process-level guarantees (a worker killed mid-job, the time
limit of a thread-pool worker) are in ``test_job_core_processes.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from deliveries.execution import delivery_run
from deliveries.models import DeliveryJob
from deliveries.services import delivery_job_cancel
from loraforge.errors import Conflict
from loraforge.jobs import cancel as cancel_module
from loraforge.jobs.background import job_cancel
from loraforge.jobs.deadline import TIME_LIMIT_EXCEEDED, deadline_end, deadline_start
from loraforge.jobs.registry import job_kinds
from loraforge.models import BackgroundJob
from loraforge.models.jobs import JobRecord, stale_running
from tests.lora_files import write_safetensors

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Driver:
    """What the core tests need to do with one kind of job."""

    model: type[JobRecord]
    fields: dict[str, Any]  # a valid pending row
    start: Any  # job -> bool (the kind's pending -> running write)
    succeed: Any  # job -> bool
    fail: Any  # job -> bool
    progress: Any  # job -> bool
    cancel: Any  # job -> job (the kind's cancel service)
    run_task: Any  # job -> None (the task body, as a worker runs it)
    timed_out: Any  # job -> bool (failed by the time limit, as the kind records it)
    after_worker_lost: tuple[str, ...]  # statuses recovery may leave a stale running job in

    def create(self, **fields: Any) -> JobRecord:
        return self.model._default_manager.create(**{**self.fields, **fields})


def _run_scan(job: BackgroundJob) -> None:
    from adapters.scan_service import scan_run

    scan_run(job_id=job.pk)


DRIVERS = {
    "loraforge.BackgroundJob": Driver(
        model=BackgroundJob,
        fields={"kind": "scan"},
        start=lambda job: job.start(),
        succeed=lambda job: job.succeed({"done": True}),
        fail=lambda job: job.fail("boom"),
        progress=lambda job: job.set_progress(0.5, "half"),
        cancel=lambda job: job_cancel(job=job),
        run_task=_run_scan,
        timed_out=lambda job: (job.status, job.error) == ("failed", TIME_LIMIT_EXCEEDED),
        after_worker_lost=("failed",),
    ),
    "deliveries.DeliveryJob": Driver(
        model=DeliveryJob,
        fields={"kind": "delivery", "mode": "http", "prompt": "a cat", "params": {"host": "127.0.0.1", "port": 9}},
        start=lambda job: job.start(worker="tests"),
        succeed=lambda job: job.succeed(result={"done": True}),
        fail=lambda job: job.fail(error="boom", error_code="boom"),
        progress=lambda job: job.set_progress(progress=0.5, message="half"),
        cancel=lambda job: delivery_job_cancel(job=job),
        run_task=lambda job: delivery_run(job_id=job.pk, worker="tests"),
        timed_out=lambda job: (
            (job.status, job.error, job.error_code) == ("failed", TIME_LIMIT_EXCEEDED, "task_timeout")
        ),
        after_worker_lost=("pending", "failed"),
    ),
}


def test_every_registered_kind_has_a_driver():
    assert {kind.model._meta.label for kind in job_kinds()} == set(DRIVERS)


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Driver:
    return DRIVERS[request.param]


def _row(job: JobRecord) -> dict[str, Any]:
    return dict(type(job)._default_manager.filter(pk=job.pk).values().get())


# --- conditional transitions (SPEC 6.2.1) ----------------------------------------------------------


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_a_terminal_job_refuses_every_write(driver: Driver, status: str):
    job = driver.create(status=status)
    before = _row(job)
    for write in (driver.start, driver.succeed, driver.fail, driver.progress, lambda job: job.heartbeat()):
        assert write(job) is False
        assert job.status == status  # the instance shows the row as stored
    assert _row(job) == before


def test_start_moves_only_a_pending_job(driver: Driver):
    job = driver.create()
    assert driver.start(job) is True
    assert (job.status, job.started_at is not None, job.heartbeat_at is not None) == ("running", True, True)
    assert driver.start(job) is False  # a duplicate task finds it running
    assert driver.succeed(job) is True
    assert (job.status, job.progress, job.finished_at is not None) == ("succeeded", 1.0, True)


def test_a_stale_instance_never_overwrites_a_newer_terminal_state(driver: Driver):
    job = driver.create()
    driver.start(job)
    other = type(job)._default_manager.get(pk=job.pk)
    assert driver.fail(other) is True
    assert driver.succeed(job) is False  # ``job`` still said running
    assert job.status == "failed"


# --- heartbeat and staleness (SPEC 6.2.2, 6.2.6) ----------------------------------------------------


def test_heartbeat_renews_a_running_job_only(driver: Driver):
    job = driver.create()
    assert job.heartbeat() is False  # pending: nothing to renew
    driver.start(job)
    type(job)._default_manager.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    assert job.heartbeat() is True
    assert job.heartbeat_at is not None
    assert timezone.now() - job.heartbeat_at < timedelta(seconds=5)
    assert job.heartbeat_is_fresh()


def test_stale_detection_is_by_heartbeat_age(driver: Driver, settings):
    settings.LORAFORGE_JOB_STALE_SECONDS = 60
    now = timezone.now()
    stale = driver.create(status="running", started_at=now - timedelta(hours=1), heartbeat_at=now - timedelta(hours=1))
    fresh = driver.create(status="running", started_at=now - timedelta(hours=1), heartbeat_at=now)
    never_beat = driver.create(status="running", started_at=now - timedelta(hours=1))
    driver.create(status="pending", heartbeat_at=now - timedelta(hours=1))
    found = set(driver.model._default_manager.filter(stale_running(now)).values_list("pk", flat=True))
    assert found == {stale.pk, never_beat.pk}
    assert not stale.heartbeat_is_fresh(now)
    assert fresh.heartbeat_is_fresh(now)


def test_recovery_moves_a_stale_job_and_leaves_a_live_one(driver: Driver, settings, sent_tasks):
    settings.LORAFORGE_JOB_STALE_SECONDS = 60
    now = timezone.now()
    stale = driver.create(status="running", started_at=now - timedelta(hours=1), heartbeat_at=now - timedelta(hours=1))
    live = driver.create(status="running", started_at=now - timedelta(hours=1), heartbeat_at=now)
    [kind] = [kind for kind in job_kinds() if kind.model is driver.model]
    assert kind.recover(dry_run=True) != []
    stale.refresh_from_db()
    assert stale.status == "running"  # a dry run changes nothing
    lines = kind.recover()
    assert [line.split()[0] for line in lines] == [str(stale.pk)]
    stale.refresh_from_db()
    live.refresh_from_db()
    assert stale.status in driver.after_worker_lost
    assert live.status == "running"
    assert kind.recover() == []  # nothing left to recover


# --- cancel (SPEC 6.2.4) ----------------------------------------------------------------------------


@pytest.fixture
def revoked(monkeypatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr("loraforge.celery.app.control.revoke", lambda task_id, **options: calls.append(task_id))
    return calls


def test_cancelling_a_pending_job_revokes_its_task_and_is_idempotent(driver: Driver, revoked: list[str]):
    job = driver.create(celery_task_id="task-7")
    assert driver.cancel(job).status == "cancelled"
    assert driver.cancel(job).status == "cancelled"  # again: a no-op
    assert revoked == ["task-7"]
    assert _row(job)["finished_at"] is not None


def test_cancelling_a_running_job_leaves_its_task_to_stop_itself(driver: Driver, revoked: list[str]):
    job = driver.create(celery_task_id="task-8")
    driver.start(job)
    assert driver.cancel(job).status == "cancelled"
    assert revoked == []  # the worker finds the row cancelled at its next check
    assert _row(job)["cancel_requested_at"] is not None


def test_cancelling_a_finished_job_is_a_conflict(driver: Driver):
    job = driver.create()
    driver.start(job)
    driver.succeed(job)
    with pytest.raises(Conflict):
        driver.cancel(job)
    assert _row(job)["status"] == "succeeded"


def test_cancel_gives_up_after_a_bounded_number_of_lost_races(driver: Driver, monkeypatch):
    job = driver.create()
    attempts: list[str] = []

    def lose(self: JobRecord, **kwargs: Any) -> bool:  # another writer keeps winning; the row stays pending
        attempts.append(self.status)
        return False

    monkeypatch.setattr(driver.model, "cancel", lose)
    assert driver.cancel(job).status == "pending"
    assert len(attempts) == cancel_module.CANCEL_ATTEMPTS


# --- the time limit where the pool enforces none (SPEC 6.2.5) -----------------------------------------


@pytest.fixture
def expired_deadline() -> Iterator[None]:
    token = deadline_start(0.001)
    time.sleep(0.01)
    yield
    deadline_end(token)


@pytest.mark.django_db(transaction=True)
def test_a_task_past_its_deadline_fails_its_job(driver: Driver, lora_dir: Path, expired_deadline: None):
    write_safetensors(lora_dir / "a.safetensors")
    job = driver.create()
    driver.run_task(job)
    job.refresh_from_db()
    assert driver.timed_out(job), (job.status, job.error)


@pytest.mark.django_db(transaction=True)
def test_without_a_deadline_the_same_task_runs(driver: Driver, lora_dir: Path, monkeypatch):
    write_safetensors(lora_dir / "a.safetensors")
    monkeypatch.setattr("deliveries.http_cli_runners.host_allowed", lambda host, port, allowed: False)
    job = driver.create()
    driver.run_task(job)
    job.refresh_from_db()
    assert job.status in ("succeeded", "failed")
    assert job.error != TIME_LIMIT_EXCEEDED
