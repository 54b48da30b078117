"""The distributed shape as deployed (SPEC 1.4): a web process, a ``celery worker`` and ``celery beat`` on Redis.

One generation against the fake SDNext with its events on a WebSocket of the web process, and a periodic
recovery sweep sent by beat and run by the worker. ``make runtime-check`` runs this file with the processes
started from a venv built from ``requirements.txt`` alone (``LORAFORGE_TEST_SERVER_PYTHON``), so a runtime
dependency that only the dev tools bring along (kombu's Redis transport needs ``packaging``) fails CI.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from deliveries.models import DeliveryJob
from loraforge.api_keys import api_key_create
from loraforge.models.jobs import BackgroundJob, BackgroundJobKind, JobStatus
from tests.fakes.sdnext import FakeSDNext
from tests.generation.test_lifecycle_processes import _assert_lifecycle, _env, _follow, _queue_generation, fake  # noqa: F401
from tests.processes import PYTHON, ProcessSet, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.redis]

STALE_SECONDS = 5  # beat then sweeps every 5 s (loraforge.celery_config.RECOVERY_PERIOD)


def _orphaned_scan() -> BackgroundJob:
    """A running job whose worker died long ago: only a recovery sweep can end it."""
    long_ago = timezone.now() - timedelta(minutes=10)
    return BackgroundJob.objects.create(
        kind=BackgroundJobKind.SCAN, status=JobStatus.RUNNING, started_at=long_ago, heartbeat_at=long_ago
    )


@pytest.mark.django_db(transaction=True)
def test_web_worker_and_beat_on_redis_generate_stream_and_recover(
    tmp_path: Path,
    fake: FakeSDNext,  # noqa: F811
    redis_url: str,
) -> None:
    key = api_key_create(name="distributed").plain_key
    env = _env(tmp_path, fake, REDIS_URL=redis_url, LORAFORGE_JOB_STALE_SECONDS=str(STALE_SECONDS))
    with ProcessSet(tmp_path / "logs") as procs:
        web, base_url = procs.start_web(env)
        hostname = f"tests-{uuid.uuid4().hex[:8]}@%h"
        worker_argv = [PYTHON, "-m", "celery", "-A", "loraforge", "worker", "-Q", "generation,default"]
        worker = procs.start("worker", [*worker_argv, "--pool", "threads", "-c", "2", "--hostname", hostname], env=env)
        beat_argv = [PYTHON, "-m", "celery", "-A", "loraforge", "beat", "--schedule", str(tmp_path / "beat")]
        beat = procs.start("beat", beat_argv, env=env)

        ws_url = base_url.replace("http://", "ws://") + f"/api/v1/ws/progress?api_key={key}"
        job_id, events = asyncio.run(_follow(ws_url, lambda: _queue_generation(base_url, key)))
        _assert_lifecycle(events)
        assert "Embedded Celery worker" not in web.log()

        # The worker ran its start-up sweep before this generation; only a sweep sent by beat can end this one.
        orphan = _orphaned_scan()
        recovered = wait_until(
            lambda: BackgroundJob.objects.filter(pk=orphan.pk, status=JobStatus.FAILED).first(),
            timeout=60,
            what="beat's recovery sweep to fail the orphaned job",
            procs=[web, worker, beat],
        )
    job = DeliveryJob.objects.get(pk=job_id)
    assert job.status == "succeeded"
    assert (job.worker or "").startswith("tests-")
    assert recovered.error == "Worker lost while running the job"
