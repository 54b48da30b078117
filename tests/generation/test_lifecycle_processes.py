"""Generation jobs end to end with real processes (SPEC 1.4, 6.2, 6.5, issue 4's process tests):

- embedded shape (``make run``'s settings): one uvicorn process serves the API and the WebSocket and runs the
  job in its embedded worker against the fake SDNext; a WebSocket client sees the whole event sequence;
- distributed shape: a separate ``celery worker`` process runs the job and publishes through Redis; a client
  connected to the web process receives every event;
- a worker killed with SIGKILL mid-generation: the heartbeat goes stale, recovery at the next worker's start
  re-queues the job (attempt 2), the lease is cleared, SDNext is interrupted, and the job completes.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from django.utils import timezone

from deliveries.models import DeliveryJob
from generation.models import GenerationBackend, GenerationResult
from loraforge.api_keys import api_key_create
from tests.fakes.sdnext import FakeSDNext
from tests.processes import PYTHON, Proc, ProcessSet, server_env, stop, wait_until

pytestmark = [pytest.mark.slow]

EVENT_TIMEOUT = 60.0
TERMINAL = ("completed", "failed", "cancelled")
STALE_SECONDS = 5


@pytest.fixture
def fake() -> Iterator[FakeSDNext]:
    server = FakeSDNext(steps_delay=0.02)
    server.start()
    yield server
    server.stop()


def _env(tmp_path: Path, fake: FakeSDNext, **extra: str | None) -> dict[str, str]:
    return server_env(tmp_path, SDNEXT_URL=fake.url, SDNEXT_POLL_INTERVAL="0.2", **extra)


def _start_worker(procs: ProcessSet, env: dict[str, str]) -> Proc:
    hostname = f"tests-{uuid.uuid4().hex[:8]}@%h"
    argv = [PYTHON, "-m", "celery", "-A", "loraforge", "worker", "-Q", "generation,default"]
    return procs.start("worker", [*argv, "--pool", "threads", "-c", "2", "--hostname", hostname], env=env)


def _queue_generation(base_url: str, key: str, **params: Any) -> str:
    body = {"prompt": "a lighthouse at dusk <lora:detail_tweaker:0.6>", "steps": 12, "width": 64, "height": 64}
    response = requests.post(
        f"{base_url}/api/v1/generation/queue-generation",
        json={**body, **params},
        headers={"X-API-Key": key},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


async def _follow(ws_url: str, start: Any) -> tuple[str, list[dict[str, Any]]]:
    """Subscribe to every job, call ``start()`` (returns the job id) and collect that job's events until
    ``generation_complete``, then half a second more (nothing may follow it)."""
    import websockets

    async with websockets.connect(ws_url, open_timeout=30) as socket:
        assert json.loads(await asyncio.wait_for(socket.recv(), 30))["type"] == "connected"
        await socket.send(json.dumps({"type": "subscribe", "job_ids": None}))
        assert json.loads(await asyncio.wait_for(socket.recv(), 30))["type"] == "subscription_confirmed"
        job_id = await asyncio.to_thread(start)
        events: list[dict[str, Any]] = []
        seen_complete = False
        while True:
            try:
                frame = await asyncio.wait_for(socket.recv(), 0.5 if seen_complete else EVENT_TIMEOUT)
            except TimeoutError:
                assert seen_complete, f"no generation_complete for {job_id}: {events}"
                return job_id, events
            event = json.loads(frame)
            if event["data"].get("job_id") == job_id:
                events.append(event)
                seen_complete = seen_complete or event["type"] == "generation_complete"


def _assert_lifecycle(events: list[dict[str, Any]]) -> dict[str, Any]:
    """SPEC 6.5's sequence: started, processing updates with non-decreasing progress, the final update, then
    exactly one ``generation_complete`` and nothing after it."""
    types = [event["type"] for event in events]
    assert types[0] == "generation_started", types
    assert types.count("generation_complete") == 1, types
    assert types[-1] == "generation_complete", types
    updates = [event["data"] for event in events if event["type"] == "progress_update"]
    assert updates[0]["status"] == "processing"
    assert [update["status"] for update in updates[:-1]] == ["processing"] * (len(updates) - 1)
    assert updates[-1]["status"] == "completed"
    assert updates[-1]["progress"] == 1.0
    progress = [update["progress"] for update in updates]
    assert progress == sorted(progress)
    assert all(update["snapshot"] is False for update in updates)
    complete: dict[str, Any] = events[-1]["data"]
    assert complete["status"] == "completed"
    assert complete["error_code"] is None
    assert isinstance(complete["total_duration"], float)
    return complete


@pytest.mark.django_db(transaction=True)
def test_embedded_shape_runs_a_generation_and_streams_every_event(tmp_path: Path, fake: FakeSDNext) -> None:
    key = api_key_create(name="embedded").plain_key
    with ProcessSet(tmp_path / "logs") as procs:
        web, base_url = procs.start_web(_env(tmp_path, fake))
        assert "Embedded Celery worker started" in web.log()
        ws_url = base_url.replace("http://", "ws://") + f"/api/v1/ws/progress?api_key={key}"
        job_id, events = asyncio.run(_follow(ws_url, lambda: _queue_generation(base_url, key)))
        complete = _assert_lifecycle(events)
        assert events[0]["data"]["backend"] == "sdnext"
        assert events[0]["data"]["params"]["steps"] == 12

        image = requests.get(base_url + complete["images"][0], headers={"X-API-Key": key}, timeout=30)
        assert image.status_code == 200
        assert image.headers["Content-Type"] == "image/jpeg"
        assert image.content[:3] == b"\xff\xd8\xff"
        assert requests.get(base_url + complete["images"][0], timeout=30).status_code == 401

    job = DeliveryJob.objects.get(pk=job_id)
    assert (job.status, job.backend_name, job.attempts, job.progress) == ("succeeded", "default", 1, 1.0)
    assert GenerationResult.objects.filter(job=job).count() == 1
    txt2img = [request for request in fake.requests if request.path == "/sdapi/v1/txt2img"]
    assert len(txt2img) == 1
    assert txt2img[0].body["prompt"] == job.prompt
    assert GenerationBackend.objects.get(name="default").lease_job is None


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_distributed_worker_publishes_through_redis_to_the_web_process(
    tmp_path: Path,
    fake: FakeSDNext,
    redis_url: str,
) -> None:
    key = api_key_create(name="distributed").plain_key
    env = _env(tmp_path, fake, REDIS_URL=redis_url)
    with ProcessSet(tmp_path / "logs") as procs:
        web, base_url = procs.start_web(env)
        _start_worker(procs, env)
        ws_url = base_url.replace("http://", "ws://") + f"/api/v1/ws/progress?api_key={key}"
        job_id, events = asyncio.run(_follow(ws_url, lambda: _queue_generation(base_url, key)))
        _assert_lifecycle(events)
        assert "Embedded Celery worker" not in web.log()
        assert (DeliveryJob.objects.get(pk=job_id).worker or "").startswith("tests-")
    assert DeliveryJob.objects.get(pk=job_id).status == "succeeded"


def _heartbeat_age(job_id: str) -> float:
    job = DeliveryJob.objects.get(pk=job_id)
    beat = job.heartbeat_at or job.started_at
    return (timezone.now() - beat).total_seconds() if beat else 0.0


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_generation_is_recovered_and_the_job_completes(
    tmp_path: Path,
    fake: FakeSDNext,
    redis_url: str,
) -> None:
    fake.steps_delay = 1.0  # long enough to kill the worker in the middle
    key = api_key_create(name="recovery").plain_key
    env = _env(tmp_path, fake, REDIS_URL=redis_url, LORAFORGE_JOB_STALE_SECONDS=str(STALE_SECONDS))
    with ProcessSet(tmp_path / "logs") as procs:
        _web, base_url = procs.start_web(env)
        first = _start_worker(procs, env)
        job_id = _queue_generation(base_url, key, steps=30)
        wait_until(
            lambda: DeliveryJob.objects.get(pk=job_id).progress > 0,
            timeout=60,
            what="the job to make progress",
            procs=[first],
        )
        stop(first, sig=signal.SIGKILL)
        killed = DeliveryJob.objects.get(pk=job_id)
        assert (killed.status, killed.attempts) == ("running", 1)
        assert GenerationBackend.objects.get(name="default").lease_job == killed.pk

        wait_until(lambda: _heartbeat_age(job_id) > STALE_SECONDS + 0.5, timeout=30, what="a stale heartbeat")
        interrupts_before = fake.interrupts
        fake.steps_delay = 0.02
        second = _start_worker(procs, env)  # worker start runs the recovery sweep (SPEC 6.2.6)
        job = wait_until(
            lambda: DeliveryJob.objects.filter(pk=job_id, status="succeeded").first(),
            timeout=90,
            what="the recovered job to succeed",
            procs=[second],
        )
    assert job.attempts == 2
    assert fake.interrupts > interrupts_before  # recovery interrupted the orphaned generation
    assert GenerationBackend.objects.get(name="default").lease_job is None
    assert not DeliveryJob.objects.filter(status__in=("pending", "running")).exists()
    assert job.finished_at is not None
    assert job.started_at is not None
    assert job.finished_at - job.started_at < timedelta(minutes=5)
