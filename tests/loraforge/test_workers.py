"""Both worker shapes with real processes: the task behind a large ``POST /adapters`` runs

- embedded: inside the uvicorn process (in-memory broker, no other process), and
- distributed: in a separate ``celery -A loraforge worker`` process fed through Redis, never in the web process.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from loraforge.api_keys import api_key_create
from tests.lora_files import write_safetensors
from tests.processes import (
    PYTHON,
    REPO_ROOT,
    Proc,
    ProcessSet,
    child_env,
    stop,
    wait_for_log,
    wait_until,
)
from tests.processes import (
    server_env as env_for_servers,
)

pytestmark = [pytest.mark.slow]

TASK_TIMEOUT = 45.0


@pytest.fixture
def lora_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "loras"
    folder.mkdir()
    return folder


@pytest.fixture
def server_env(tmp_path: Path, lora_folder: Path) -> dict[str, str]:
    """What a web or worker process needs to share this test's database and LoRA folder."""
    return env_for_servers(
        tmp_path,
        LORAFORGE_LORA_DIRS=str(lora_folder),
        LORAFORGE_SYNC_HASH_MAX_MB="0",  # every file is hashed by the task
    )


def _post_adapter(base_url: str, key: str, path: Path) -> dict[str, Any]:
    response = requests.post(
        f"{base_url}/api/v1/adapters",
        json={"name": path.stem, "file_path": str(path)},
        headers={"X-API-Key": key},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    adapter: dict[str, Any] = response.json()["adapter"]
    return adapter


def _get_adapter(base_url: str, key: str, adapter_id: str) -> dict[str, Any]:
    response = requests.get(f"{base_url}/api/v1/adapters/{adapter_id}", headers={"X-API-Key": key}, timeout=30)
    assert response.status_code == 200, response.text
    adapter: dict[str, Any] = response.json()["adapter"]
    return adapter


def _wait_hashed(base_url: str, key: str, adapter_id: str, procs: list[Proc]) -> dict[str, Any]:
    def hashed() -> dict[str, Any] | None:
        adapter = _get_adapter(base_url, key, adapter_id)
        return adapter if adapter["hash_status"] == "done" else None

    return wait_until(hashed, timeout=TASK_TIMEOUT, what="hash_status 'done'", procs=procs, interval=0.3)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _queued(client: redis.Redis, queue: str) -> int:
    """Messages waiting in a kombu Redis queue (one list per priority step)."""
    return sum(int(client.llen(name)) for name in client.scan_iter(match=f"{queue}*") if client.type(name) == b"list")


def _queued_tasks(client: redis.Redis, queue: str) -> list[str]:
    """The names of the tasks waiting in a kombu Redis queue (Celery's JSON messages carry them in their headers)."""
    names = [name for name in client.scan_iter(match=f"{queue}*") if client.type(name) == b"list"]
    messages = [message for name in names for message in client.lrange(name, 0, -1)]
    return sorted(json.loads(message)["headers"]["task"] for message in messages)


@pytest.mark.django_db(transaction=True)
def test_embedded_worker_runs_the_hash_task_inside_the_server(
    tmp_path: Path, lora_folder: Path, server_env: dict[str, str]
) -> None:
    lora = write_safetensors(lora_folder / "ink-sketch.safetensors", size=4096)
    key = api_key_create(name="embedded").plain_key
    with ProcessSet(tmp_path / "logs") as procs:
        web, base_url = procs.start_web(server_env)
        assert "Embedded Celery worker started" in web.log()

        created = _post_adapter(base_url, key, lora)
        assert created["hash_status"] == "pending"
        assert created["sha256"] is None

        adapter = _wait_hashed(base_url, key, created["id"], [web])
        assert adapter["sha256"] == _sha256(lora)
        assert adapter["autov2"] == adapter["sha256"][:10]


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_redis_worker_process_runs_the_task_the_web_process_enqueued(
    tmp_path: Path, lora_folder: Path, server_env: dict[str, str], redis_url: str
) -> None:
    lora = write_safetensors(lora_folder / "celestial.safetensors", size=4096)
    key = api_key_create(name="distributed").plain_key
    env = {**server_env, "REDIS_URL": redis_url}
    broker = redis.Redis.from_url(redis_url)
    with ProcessSet(tmp_path / "logs") as procs:
        web, base_url = procs.start_web(env)
        assert "Embedded Celery worker" not in web.log()

        # Phase 1, no worker: the messages wait in Redis and nothing in the web process consumes them: the hash
        # task and the embeddings sweep that follows every adapter write.
        queued = ["adapters.hash_adapter_file", "recommendations.compute_embeddings"]
        created = _post_adapter(base_url, key, lora)
        assert created["hash_status"] == "pending"
        wait_until(lambda: _queued_tasks(broker, "default") == queued, timeout=10, what="the tasks", procs=[web])
        time.sleep(2)  # time enough for a consumer in the web process, were there one
        assert _get_adapter(base_url, key, created["id"])["hash_status"] == "pending"
        assert _queued_tasks(broker, "default") == queued

        # Phase 2: a separate worker process takes it.
        hostname = f"tests-{uuid.uuid4().hex[:8]}@%h"
        argv = [PYTHON, "-m", "celery", "-A", "loraforge", "worker", "-Q", "generation,default"]
        worker = procs.start("worker", [*argv, "--pool", "threads", "-c", "2", "--hostname", hostname], env=env)
        adapter = _wait_hashed(base_url, key, created["id"], [web, worker])
        assert adapter["sha256"] == _sha256(lora)
        # The hash is an adapter write too, so it may queue another sweep: the worker takes that one as well.
        wait_until(lambda: _queued(broker, "default") == 0, timeout=10, what="an empty queue", procs=[web, worker])
        assert "Embedded Celery worker" not in web.log()

        assert stop(worker) == 0, "the worker must shut down warm on SIGTERM"
    broker.close()


@pytest.mark.redis
def test_beat_starts_on_redis_and_writes_no_schedule_file(tmp_path: Path, redis_url: str) -> None:
    workdir = tmp_path / "beat"
    workdir.mkdir()
    env = child_env(
        LORAFORGE_DATA_DIR=str(tmp_path / "data"),
        REDIS_URL=redis_url,
        PYTHONPATH=str(REPO_ROOT),
        DATABASE_URL=None,
    )
    before = set(REPO_ROOT.iterdir())
    with ProcessSet(tmp_path / "logs") as procs:
        beat = procs.start("beat", [PYTHON, "-m", "celery", "-A", "loraforge", "beat"], env=env, cwd=workdir)
        log = wait_for_log(beat, "celery.beat.Scheduler", timeout=60)
        assert f"127.0.0.1:6379/{redis_url.rsplit('/', 1)[1]}" in log  # the broker line (password masked)
        time.sleep(2)  # a few ticks
        assert beat.alive(), beat.describe()
        assert stop(beat) == 0
    assert list(workdir.iterdir()) == []
    assert not {path.name for path in set(REPO_ROOT.iterdir()) - before if path.name.startswith("celerybeat")}
