"""``GET /system/status`` of a real web process in the distributed shape (SPEC 1.4, 6.9): Redis down, Redis up
without a worker, and a real ``celery worker`` answering the broadcast ping."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from generation.models import GenerationBackend
from loraforge.api_keys import api_key_create
from tests.processes import PYTHON, ProcessSet, free_port, server_env, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BUDGET = 3.0


def _env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    return server_env(
        tmp_path,
        REDIS_URL=redis_url,
        LORAFORGE_EMBEDDED_WORKER="off",
        LORAFORGE_LORA_DIRS=str(tmp_path),
        LORAFORGE_DISK_WARNING_PERCENT="100",
    )


def _status(base_url: str, key: str) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    response = requests.get(f"{base_url}/api/v1/system/status", headers={"X-API-Key": key}, timeout=30)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    return response.json(), elapsed


def test_redis_down_is_reported_within_the_budget(tmp_path: Path) -> None:
    """No Redis server needed: ``REDIS_URL`` points at a closed port."""
    key = api_key_create(name="status").plain_key
    closed = f"redis://127.0.0.1:{free_port()}/0"
    GenerationBackend.objects.create(name="gone", url=f"http://127.0.0.1:{free_port()}")  # the cache is Redis too
    with ProcessSet(tmp_path / "logs") as procs:
        _, base_url = procs.start_web(_env(tmp_path, closed))
        body, elapsed = _status(base_url, key)
        print(f"status with Redis down answered in {elapsed:.2f} s")
    assert elapsed < BUDGET
    assert (body["mode"], body["backend"]) == ("distributed", "redis")
    assert body["redis"] == {"configured": True, "ok": False, "latency_ms": None, "error": "connection refused"}
    assert body["celery"]["ok"] is False
    assert body["celery"]["workers"] == []
    assert body["warnings"] == [
        "Generation backend 'gone' is unreachable: connection refused",
        "Redis is unavailable",
        "No Celery worker responded",
    ]
    assert body["status"] == "warning"
    assert body["database"]["ok"] is True


@pytest.mark.redis
def test_workers_answering_the_broadcast_ping_are_listed(tmp_path: Path, redis_url: str) -> None:
    key = api_key_create(name="status").plain_key
    env = _env(tmp_path, redis_url)
    with ProcessSet(tmp_path / "logs") as procs:
        web, base_url = procs.start_web(env)
        body, elapsed = _status(base_url, key)
        assert elapsed < BUDGET
        assert body["redis"]["ok"] is True
        assert body["redis"]["latency_ms"] is not None
        assert body["celery"] == {
            "mode": "distributed",
            "ok": False,
            "workers": [],
            "error": None,
            "queue_depth": {"generation": 0, "default": 0},
        }
        assert body["warnings"] == ["No Celery worker responded"]

        hostname = f"status-{uuid.uuid4().hex[:8]}@localhost"
        argv = [PYTHON, "-m", "celery", "-A", "loraforge", "worker", "-Q", "generation,default"]
        worker = procs.start("worker", [*argv, "--pool", "threads", "-c", "1", "--hostname", hostname], env=env)

        def listed() -> dict[str, Any] | None:
            status, _ = _status(base_url, key)
            return status if status["celery"]["workers"] else None

        body = wait_until(listed, timeout=90, what="the worker in the status", procs=[web, worker], interval=1.0)
    assert body["celery"]["workers"] == [{"name": hostname, "ok": True}]
    assert body["celery"]["ok"] is True
    assert body["active_workers"] == 1
    assert body["warnings"] == []
    assert body["status"] == "healthy"


def test_the_embedded_server_reports_its_worker_and_beat_records_samples(tmp_path: Path) -> None:
    """``make run``'s shape: the embedded worker answers for Celery, and its in-process beat sends the sampling
    task every ``LORAFORGE_RESOURCE_SAMPLE_SECONDS``."""
    from analytics.models import ResourceSample

    key = api_key_create(name="status").plain_key
    env = server_env(
        tmp_path,
        LORAFORGE_LORA_DIRS=str(tmp_path),
        LORAFORGE_DISK_WARNING_PERCENT="100",
        LORAFORGE_RESOURCE_SAMPLE_SECONDS="1",
    )
    with ProcessSet(tmp_path / "logs") as procs:
        web, base_url = procs.start_web(env)
        body, elapsed = _status(base_url, key)
        assert elapsed < BUDGET
        samples = wait_until(
            lambda: ResourceSample.objects.count() >= 2, timeout=60, what="two resource samples", procs=[web]
        )
    assert samples
    assert (body["mode"], body["backend"], body["celery"]["mode"]) == ("embedded", "in-memory", "embedded")
    [worker] = body["celery"]["workers"]
    assert worker["name"].startswith("embedded-")
    assert worker["ok"] is True
    assert body["active_workers"] == 1
    assert body["warnings"] == []
