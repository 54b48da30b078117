"""Concurrent writes through the real server on SQLite (issue 9): 8 clients creating and patching adapters while
the embedded worker hashes every file (its own writes) — no 503 "Database is busy", no lost write. It runs in
both passes of ``make test``; SQLite is the one it was written for.

SQLite admits one writer at a time; the server's writers queue for it in the process (``loraforge.sqlite``)
instead of sleeping in SQLite's busy handler, where a burst used to leave a few requests waiting out the whole
``busy_timeout``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests

from adapters.models import Adapter
from loraforge.api_keys import api_key_create
from tests.lora_files import write_safetensors
from tests.processes import ProcessSet, server_env, wait_until

pytestmark = [pytest.mark.slow]

CLIENTS = 8
PER_CLIENT = 30


def _client(base_url: str, key: str, paths: list[Path], failures: list[str]) -> None:
    session = requests.Session()
    session.headers["X-API-Key"] = key
    for path in paths:
        created = session.post(f"{base_url}/api/v1/adapters", json={"name": path.stem, "file_path": str(path)})
        if created.status_code != 201:
            failures.append(f"POST {path.name}: {created.status_code} {created.text[:200]}")
            continue
        adapter_id = created.json()["adapter"]["id"]
        patched = session.patch(
            f"{base_url}/api/v1/adapters/{adapter_id}", json={"notes": f"patched {path.stem}", "tags": ["burst"]}
        )
        if patched.status_code != 200:
            failures.append(f"PATCH {path.name}: {patched.status_code} {patched.text[:200]}")


@pytest.mark.django_db(transaction=True)
def test_eight_writers_and_the_embedded_worker_lose_nothing(tmp_path: Path) -> None:
    loras = tmp_path / "loras"
    files = [write_safetensors(loras / f"burst_{n:03d}.safetensors") for n in range(CLIENTS * PER_CLIENT)]
    key = api_key_create(name="burst").plain_key
    env = server_env(
        tmp_path,
        LORAFORGE_LORA_DIRS=str(loras),
        LORAFORGE_SYNC_HASH_MAX_MB="0",  # every create queues a hashing task: the embedded worker writes too
        LORAFORGE_LOG_LEVEL="warning",
    )
    failures: list[str] = []
    with ProcessSet(tmp_path / "logs") as procs:
        web, base_url = procs.start_web(env)
        threads = [
            threading.Thread(target=_client, args=(base_url, key, files[n::CLIENTS], failures)) for n in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        assert failures == [], failures[:5]
        wait_until(
            lambda: not Adapter.objects.exclude(hash_status="done").exists(),
            timeout=120,
            what="the embedded worker to hash every file",
            procs=[web],
        )
        assert "Database is busy" not in web.log()
    adapters = list(Adapter.objects.all())
    assert len(adapters) == CLIENTS * PER_CLIENT
    assert all(adapter.notes == f"patched {adapter.name}" for adapter in adapters)
    assert all(adapter.tags == ["burst"] for adapter in adapters)
    assert all(adapter.sha256 and len(adapter.sha256) == 64 for adapter in adapters)
