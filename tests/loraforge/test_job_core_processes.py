"""The job core with real worker processes on Redis (SPEC 6.2.5, 6.2.6, issue 10), once per kind of job:

- a worker killed with SIGKILL mid-job: its heartbeat goes stale and the sweep run when the next worker starts
  recovers the job (a BackgroundJob fails with "worker lost"; a DeliveryJob is re-queued and completes);
- a worker on the thread pool (the pool of the embedded shape, which enforces no time limit) runs a task sent
  with a 1 s soft limit: the task checks its own deadline between steps and its job ends ``failed``.

Each job is created by its service in this process; the message the service sends is captured and sent again
through Redis (with the short limit where one is tested), so the worker runs exactly what the service queues.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from adapters.scan_service import ScanRequest, scan_start
from deliveries.models import DeliveryJob
from generation.jobs.serializers import GenerateRequestSerializer, GenerationQuerySerializer
from generation.jobs.services import GenerationOptions, generation_job_create
from generation.models import GenerationBackend
from loraforge.jobs.deadline import TIME_LIMIT_EXCEEDED
from loraforge.jobs.recovery import WORKER_LOST
from loraforge.models import BackgroundJob
from loraforge.models.jobs import JobRecord
from tests.fakes.sdnext import FakeSDNext
from tests.generation.test_lifecycle_processes import fake  # noqa: F401 - fixture: the fake SDNext, fast
from tests.processes import PYTHON, Proc, ProcessSet, server_env, stop, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

STALE_SECONDS = 5
GIB = 1024**3


def _sparse_models(folder: Path, count: int, size: int) -> None:
    """Large files that cost no disk: hashing each one takes seconds (a scan with time to interrupt)."""
    for index in range(count):
        with open(folder / f"big_{index}.safetensors", "wb") as handle:
            handle.truncate(size)


@dataclass(frozen=True)
class Case:
    """One kind of job: how to queue a slow one, and what a lost worker leaves of it."""

    create: Callable[[Path, FakeSDNext], JobRecord]
    recovered: Callable[[JobRecord], bool]


def _slow_scan(loras: Path, sdnext: FakeSDNext) -> JobRecord:
    _sparse_models(loras, count=3, size=GIB)
    return scan_start(request=ScanRequest(), created_via="api")


def _slow_generation(loras: Path, sdnext: FakeSDNext) -> JobRecord:
    sdnext.steps_delay = 0.5
    GenerationBackend.objects.create(name="default", url=sdnext.url, is_default=True)
    request = GenerateRequestSerializer(data={"prompt": "a lighthouse", "steps": 20, "width": 64, "height": 64})
    request.is_valid(raise_exception=True)
    query = GenerationQuerySerializer(data={})
    query.is_valid(raise_exception=True)
    options = GenerationOptions.from_query(query.validated_data)
    return generation_job_create(params=request.validated_data, options=options, created_via="queue")


def _scan_lost(job: JobRecord) -> bool:
    return (job.status, job.error) == ("failed", WORKER_LOST)


def _generation_recovered(job: JobRecord) -> bool:
    return isinstance(job, DeliveryJob) and (job.status, job.attempts) == ("succeeded", 2)


CASES = {
    "BackgroundJob (scan)": Case(create=_slow_scan, recovered=_scan_lost),
    "DeliveryJob (generation)": Case(create=_slow_generation, recovered=_generation_recovered),
}


def _env(tmp_path: Path, loras: Path, fake: FakeSDNext, redis_url: str) -> dict[str, str]:  # noqa: F811
    return server_env(
        tmp_path,
        LORAFORGE_LORA_DIRS=str(loras),
        LORAFORGE_JOB_STALE_SECONDS=str(STALE_SECONDS),
        SDNEXT_URL=fake.url,
        SDNEXT_POLL_INTERVAL="0.2",
        REDIS_URL=redis_url,
    )


def _start_worker(procs: ProcessSet, env: dict[str, str]) -> Proc:
    hostname = f"tests-{uuid.uuid4().hex[:8]}@%h"
    argv = [PYTHON, "-m", "celery", "-A", "loraforge", "worker", "-Q", "generation,default"]
    return procs.start("worker", [*argv, "--pool", "threads", "-c", "2", "--hostname", hostname], env=env)


def _send_again(redis_url: str, sent: list[tuple[str, list, dict]], **limits: Any) -> None:
    """The one task the service queued, sent through Redis (``limits``: a shorter soft/hard time limit)."""
    [(name, args, options)] = sent
    client = Celery("tests", broker=redis_url)
    try:
        client.send_task(name, args=args, queue=options.get("queue") or "default", **limits)
    finally:
        client.close()


def _reload(job: JobRecord) -> JobRecord:
    return type(job)._default_manager.get(pk=job.pk)


def _terminal(job: JobRecord) -> JobRecord | None:
    row = _reload(job)
    return row if row.is_terminal else None


def _heartbeat_age(job: JobRecord) -> float:
    from django.utils import timezone

    row = _reload(job)
    beat = row.heartbeat_at or row.started_at
    return (timezone.now() - beat).total_seconds() if beat else 0.0


@dataclass(frozen=True)
class Queued:
    """A slow job of one kind, created by its service; ``send`` puts its task on Redis for the workers."""

    case: Case
    job: JobRecord
    env: dict[str, str]
    send: Callable[..., None]
    logs: Path
    fake: FakeSDNext


@pytest.fixture(params=sorted(CASES))
def queued(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    lora_dir: Path,
    fake: FakeSDNext,  # noqa: F811
    redis_url: str,
    sent_tasks: list[tuple[str, list, dict]],
) -> Queued:
    case = CASES[request.param]
    job = case.create(lora_dir, fake)
    env = _env(tmp_path, lora_dir, fake, redis_url)
    send = partial(_send_again, redis_url, sent_tasks)
    return Queued(case=case, job=job, env=env, send=send, logs=tmp_path / "logs", fake=fake)


def test_a_worker_killed_mid_job_leaves_a_job_the_next_worker_recovers(queued: Queued) -> None:
    job = queued.job
    with ProcessSet(queued.logs) as procs:
        first = _start_worker(procs, queued.env)
        queued.send()
        wait_until(lambda: _reload(job).status == "running", timeout=60, what="the job to start", procs=[first])
        stop(first, sig=signal.SIGKILL)
        assert _reload(job).status == "running"  # nobody is left to say otherwise

        wait_until(lambda: _heartbeat_age(job) > STALE_SECONDS + 0.5, timeout=30, what="a stale heartbeat")
        queued.fake.steps_delay = 0.02
        second = _start_worker(procs, queued.env)  # a worker's start runs the sweep of every kind (SPEC 6.2.6)
        recovered = wait_until(lambda: _terminal(job), timeout=90, what="the job to be recovered", procs=[second])
    assert queued.case.recovered(recovered), (recovered.status, recovered.error)


def test_a_thread_pool_worker_ends_a_job_at_its_time_limit(queued: Queued) -> None:
    with ProcessSet(queued.logs) as procs:
        worker = _start_worker(procs, queued.env)
        queued.send(soft_time_limit=1, time_limit=120)
        ended = wait_until(lambda: _terminal(queued.job), timeout=90, what="the job to end", procs=[worker])
    assert (ended.status, ended.error) == ("failed", TIME_LIMIT_EXCEEDED)
    if isinstance(ended, DeliveryJob):
        assert ended.error_code == "task_timeout"
    else:
        assert isinstance(ended, BackgroundJob)
