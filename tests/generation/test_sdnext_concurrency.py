"""One job per SDNext server (SPEC 6.2.3 step 2): three jobs on two backends, run from three worker threads,
never overlap on a server, and all complete."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from deliveries.execution import delivery_run
from deliveries.models import DeliveryJob
from generation.models import GenerationBackend
from tests.fakes.sdnext import FakeSDNext, routes
from tests.generation.factories import GenerationBackendFactory

pytestmark = pytest.mark.django_db(transaction=True)

TERMINAL = ("succeeded", "failed", "cancelled")


class InFlight:
    """Counts txt2img requests being handled by each fake at the same time (the peak per fake)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: Counter[int] = Counter()
        self.peak: Counter[int] = Counter()
        self.total: Counter[int] = Counter()

    def wrap(self, handler):
        def counted(fake, request):
            key = id(fake)
            with self.lock:
                self.active[key] += 1
                self.total[key] += 1
                self.peak[key] = max(self.peak[key], self.active[key])
            try:
                return handler(fake, request)
            finally:
                with self.lock:
                    self.active[key] -= 1

        return counted


@pytest.fixture
def fakes():
    servers = [FakeSDNext(steps_delay=0.02), FakeSDNext(steps_delay=0.02)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


def run_until_terminal(job_id, worker: str, errors: list[BaseException]) -> None:
    """What Celery's 2 s re-schedule does, without the broker: run again while the job waits."""
    try:
        for _ in range(2000):
            delivery_run(job_id=job_id, worker=worker)
            if DeliveryJob.objects.get(pk=job_id).status in TERMINAL:
                return
            threading.Event().wait(0.02)
        raise AssertionError(f"job {job_id} never finished")
    except BaseException as exc:
        errors.append(exc)
    finally:
        connection.close()


def test_three_jobs_on_two_backends_never_overlap(fakes, sdnext_settings, generation_job, monkeypatch) -> None:
    in_flight = InFlight()
    txt2img = routes.ROUTES["/sdapi/v1/txt2img"]
    monkeypatch.setitem(txt2img, "POST", in_flight.wrap(txt2img["POST"]))
    for number, fake in enumerate(fakes):
        GenerationBackendFactory(name=f"gpu-{number}", url=fake.url)
    jobs = [generation_job(prompt=f"job {number}", steps=8) for number in range(3)]

    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=run_until_terminal, args=(job.pk, f"worker-{number}", errors), daemon=True)
        for number, job in enumerate(jobs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    statuses = {str(job.pk): DeliveryJob.objects.get(pk=job.pk).status for job in jobs}
    assert set(statuses.values()) == {"succeeded"}, statuses
    assert sum(in_flight.total.values()) == 3
    assert all(in_flight.peak[id(fake)] <= 1 for fake in fakes), in_flight.peak
    assert all(DeliveryJob.objects.get(pk=job.pk).attempts == 1 for job in jobs)
    assert set(GenerationBackend.objects.values_list("lease_job", flat=True)) == {None}
