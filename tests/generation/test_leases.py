"""Backend choice and leases (SPEC 6.2.3 steps 1-2, 6.2.6): which backend a job gets, waiting for a free one,
the queue-wait timeout, no backend at all, and recovery's release of an orphaned job's lease."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.models import DeliveryJob
from generation.backends.leases import backend_candidates, lease_acquire, lease_release, lease_renew, leases_clear
from generation.models import GenerationBackend
from generation.runner import SDNextRunner
from tests.fakes.sdnext import FakeSDNext
from tests.generation.factories import GenerationBackendFactory
from tests.progress_events import EventRecorder

pytestmark = pytest.mark.django_db


def hold(backend: GenerationBackend, *, seconds: float = 600) -> uuid.UUID:
    """Another job holds ``backend`` for ``seconds`` (negative: an expired lease)."""
    holder = uuid.uuid4()
    GenerationBackend.objects.filter(pk=backend.pk).update(
        lease_job=holder, lease_expires_at=timezone.now() + timedelta(seconds=seconds)
    )
    return holder


def test_candidates_healthy_or_unknown_first_then_least_recently_used():
    now = timezone.now()
    sick = GenerationBackendFactory(name="sick", healthy=False, last_used_at=None)
    recent = GenerationBackendFactory(name="recent", healthy=True, last_used_at=now)
    older = GenerationBackendFactory(name="older", healthy=None, last_used_at=now - timedelta(hours=1))
    fresh = GenerationBackendFactory(name="fresh", healthy=True, last_used_at=None)
    GenerationBackendFactory(name="off", enabled=False)
    assert [b.name for b in backend_candidates("sdnext")] == [fresh.name, older.name, recent.name, sick.name]


def test_a_pinned_backend_is_the_only_candidate():
    GenerationBackendFactory(name="one")
    GenerationBackendFactory(name="two")
    GenerationBackendFactory(name="off", enabled=False)
    assert [b.name for b in backend_candidates("two")] == ["two"]
    assert backend_candidates("off") == []
    assert backend_candidates("gone") == []


def test_acquire_skips_a_held_backend_and_takes_an_expired_lease():
    busy = GenerationBackendFactory(name="busy")
    stale = GenerationBackendFactory(name="stale")
    hold(busy)
    hold(stale, seconds=-1)
    job_id = uuid.uuid4()
    won = lease_acquire(job_id=job_id, candidates=[busy, stale])
    assert won is not None
    assert won.name == "stale"
    stale.refresh_from_db()
    assert stale.lease_job == job_id
    assert stale.last_used_at is not None
    lease = (stale.lease_expires_at - stale.last_used_at).total_seconds()
    assert lease == pytest.approx(600 + 120, abs=1)  # SDNEXT_TIMEOUT + 120 s


def test_a_lease_lasts_the_backends_timeout_plus_120_s():
    backend = GenerationBackendFactory(timeout_seconds=30)
    assert lease_acquire(job_id=uuid.uuid4(), candidates=[backend]) is not None
    backend.refresh_from_db()
    assert (backend.lease_expires_at - backend.last_used_at).total_seconds() == pytest.approx(150, abs=1)


def test_only_the_holder_renews_or_releases():
    backend = GenerationBackendFactory()
    holder = hold(backend, seconds=10)
    other = uuid.uuid4()
    assert not lease_renew(backend_id=backend.pk, job_id=other, seconds=500)
    assert not lease_release(backend_id=backend.pk, job_id=other)
    assert lease_renew(backend_id=backend.pk, job_id=holder, seconds=500)
    backend.refresh_from_db()
    assert backend.lease_expires_at > timezone.now() + timedelta(seconds=400)
    assert lease_release(backend_id=backend.pk, job_id=holder)
    backend.refresh_from_db()
    assert (backend.lease_job, backend.lease_expires_at) == (None, None)


def test_leases_clear_frees_only_the_jobs_leases():
    mine, theirs = GenerationBackendFactory(), GenerationBackendFactory()
    job_id = hold(mine)
    hold(theirs)
    assert [backend.pk for backend in leases_clear(job_id=job_id)] == [mine.pk]
    theirs.refresh_from_db()
    assert theirs.lease_job is not None


# --- the runner's side ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_no_enabled_backend_fails_the_job(sdnext_settings, generation_job, run_job):
    GenerationBackendFactory(enabled=False)
    recorder = EventRecorder()
    job = run_job(generation_job())
    assert (job.status, job.error_code, job.error) == ("failed", "no_backend", "No enabled generation backend")
    assert job.result is not None
    assert (job.result["status"], job.result["error_message"], job.result["backend"]) == (
        "failed",
        "No enabled generation backend",
        None,
    )
    types = [event["type"] for event in recorder.events() if event["data"].get("job_id") == str(job.pk)]
    assert types == ["progress_update", "generation_complete"]


@pytest.mark.django_db(transaction=True)
def test_a_disabled_pinned_backend_fails_the_job(sdnext_settings, generation_job, run_job):
    GenerationBackendFactory(name="idle")
    GenerationBackendFactory(name="pinned", enabled=False)
    job = run_job(generation_job(backend="pinned"))
    assert (job.status, job.error_code) == ("failed", "no_backend")


@pytest.mark.django_db(transaction=True)
def test_a_busy_backend_keeps_the_job_waiting(sdnext_settings, generation_job, run_job):
    backend = GenerationBackendFactory()
    holder = hold(backend)
    recorder = EventRecorder()
    job = run_job(generation_job())
    assert (job.status, job.message, job.attempts) == ("pending", "Waiting for a free backend", 0)
    assert job.enqueued_at is not None
    assert job.celery_task_id
    first_enqueue = job.enqueued_at
    job = run_job(job)
    assert job.status == "pending"
    assert job.enqueued_at > first_enqueue
    updates = [event["data"] for event in recorder.events() if event["data"].get("job_id") == str(job.pk)]
    assert [(update["status"], update["message"]) for update in updates] == [("queued", "Waiting for a free backend")]
    backend.refresh_from_db()
    assert backend.lease_job == holder


@pytest.mark.django_db(transaction=True)
def test_waiting_past_the_queue_timeout_fails_the_job(sdnext_settings, generation_job, run_job):
    sdnext_settings.LORAFORGE_QUEUE_WAIT_TIMEOUT = 5
    backend = GenerationBackendFactory()
    holder = hold(backend)
    job = generation_job()
    DeliveryJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(seconds=6))
    job = run_job(job)
    assert (job.status, job.error_code) == ("failed", "queue_timeout")
    assert job.error == "No generation backend became free within 5 s"
    backend.refresh_from_db()
    assert backend.lease_job == holder


@pytest.mark.django_db(transaction=True)
def test_release_of_an_orphaned_job_clears_its_lease_and_interrupts_once(sdnext_settings, generation_job):
    fake = FakeSDNext()
    fake.start()
    try:
        backend = GenerationBackendFactory(url=fake.url)
        bystander = GenerationBackendFactory(url=fake.url)
        job = generation_job()
        hold(bystander)
        GenerationBackend.objects.filter(pk=backend.pk).update(
            lease_job=job.pk, lease_expires_at=timezone.now() + timedelta(seconds=600)
        )
        SDNextRunner().release(job)
        assert fake.interrupts == 1
    finally:
        fake.stop()
    backend.refresh_from_db()
    bystander.refresh_from_db()
    assert (backend.lease_job, backend.lease_expires_at) == (None, None)
    assert bystander.lease_job is not None
    assert [request.path for request in fake.requests] == ["/sdapi/v1/interrupt"]


def test_release_without_a_lease_sends_nothing(generation_job):
    fake = FakeSDNext()
    fake.start()
    try:
        GenerationBackendFactory(url=fake.url)
        SDNextRunner().release(generation_job())
    finally:
        fake.stop()
    assert fake.requests == []
