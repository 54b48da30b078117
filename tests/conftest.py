"""Shared fixtures: LoRA folders, API clients with real keys, tiny safetensors files."""

from __future__ import annotations

import os
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from loraforge.api_keys import api_key_create


def _mandatory(name: str) -> bool:
    return os.environ.get(name) == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked postgres/redis skip on a bare machine unless the service is made mandatory."""
    from django.db import connection

    sqlite_pass = os.environ.get("LORAFORGE_TEST_DB") == "sqlite"
    for item in items:
        if "postgres" in item.keywords and connection.vendor != "postgresql":
            if sqlite_pass:
                item.add_marker(pytest.mark.skip(reason="runs in the PostgreSQL pass of make test"))
            elif not _mandatory("LORAFORGE_TEST_POSTGRES"):
                item.add_marker(pytest.mark.skip(reason="PostgreSQL tests need LORAFORGE_TEST_POSTGRES=1"))
        if "redis" in item.keywords and not _mandatory("LORAFORGE_TEST_REDIS"):
            item.add_marker(pytest.mark.skip(reason="Redis tests need LORAFORGE_TEST_REDIS=1"))


SESSIONS_LEFT_WAIT = 10.0  # seconds a thread still finishing (a background fit, a worker) may take to disconnect


_taken_by: dict[int, str] = {}  # PostgreSQL backend pid -> who last took that connection (thread, test, code)


def _record_taker(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` (sent on every take from the pool too): remember who took it, so that a session left
    at teardown names its thread, its test and where it was opened."""
    if connection.vendor != "postgresql":
        return
    root = str(Path(__file__).resolve().parent.parent)
    here = [
        frame for frame in traceback.extract_stack()[:-1]
        if frame.filename.startswith(root) and "site-packages" not in frame.filename
    ]  # fmt: skip
    code = " < ".join(f"{Path(frame.filename).name}:{frame.lineno} {frame.name}" for frame in reversed(here[-4:]))
    test = os.environ.get("PYTEST_CURRENT_TEST", "outside a test")
    _taken_by[connection.connection.info.backend_pid] = f"{threading.current_thread().name} in {test}: {code}"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's test databases. Before PostgreSQL's is dropped, the connection pool is closed (as Django's
    teardown does first), and a session some thread still holds is waited for (up to ``SESSIONS_LEFT_WAIT``) and
    reported with the threads alive and who took it: dropping the database fails while one is connected, and that
    error alone does not say whose it was."""
    from django.db.backends.signals import connection_created

    connection_created.connect(_record_taker, weak=False, dispatch_uid="tests.record_taker")
    yield
    from django.db import connection as default

    if default.vendor != "postgresql":
        return
    connection: Any = default  # PostgreSQL's wrapper: ``close_pool`` and ``get_connection_params``
    with django_db_blocker.unblock():
        connection.close()
        connection.close_pool()  # idle pooled connections close; one a thread still holds stays
        first = others = _sessions_on(connection)
        deadline = time.monotonic() + SESSIONS_LEFT_WAIT
        while others and time.monotonic() < deadline:
            time.sleep(0.2)
            others = _sessions_on(connection)
    if first:
        threads = sorted(thread.name for thread in threading.enumerate() if thread is not threading.current_thread())
        state = "still connected" if others else "disconnected within the wait"
        takers = {session[0]: _taken_by.get(session[0], "not taken through Django") for session in first}
        warnings.warn(
            f"Sessions on the test database at teardown ({state}): {first}; threads alive: {threads}; "
            f"taken by: {takers}",
            stacklevel=2,
        )


def _sessions_on(connection: Any) -> list[tuple[Any, ...]]:
    """The sessions connected to ``connection``'s database, read from a connection to the ``postgres`` database."""
    import psycopg

    params = {**connection.get_connection_params(), "dbname": "postgres"}
    with psycopg.connect(**params, autocommit=True) as admin:
        return admin.execute(
            "SELECT pid, application_name, state, backend_start, left(query, 200) FROM pg_stat_activity "
            "WHERE datname = %s",
            [connection.settings_dict["NAME"]],
        ).fetchall()


@pytest.fixture(autouse=True)
def _fresh_response_caches() -> None:
    """Each test starts with empty in-process response caches (a rolled-back test leaves entries behind)."""
    from loraforge import response_cache

    with response_cache._caches_lock:
        for cache in response_cache._caches.values():
            cache.clear()


@pytest.fixture(autouse=True)
def _co_usage_history_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test keeps the co-usage history in memory unless it asks to (``tests/recommendations/test_cousage.py``):
    otherwise a slow query on a busy machine would start a background load in whichever test ran it."""
    from recommendations import cousage

    monkeypatch.setattr(cousage, "KEEP_AFTER_SECONDS", float("inf"))
    monkeypatch.setattr(cousage, "WARM_MIN_LINKS", 10**12)  # nor with a process's first index
    cousage.history_reset()
    yield
    cousage.history_reset()


REDIS_HOST = "redis://127.0.0.1:6379"
CLAIM_KEY = "loraforge-tests:claimed-by"


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database number of its own (empty, claimed with SET NX), flushed afterwards: tests that share the
    server, in one pass or in passes run side by side, never see each other's keys, queues or workers."""
    import redis

    token = uuid.uuid4().hex
    for db in range(15, 0, -1):
        client = redis.Redis.from_url(f"{REDIS_HOST}/{db}")
        if client.dbsize() == 0 and client.set(CLAIM_KEY, token, nx=True, ex=900):
            break
        client.close()
    else:
        pytest.fail("no empty Redis database (1..15) to run the test in")
    try:
        yield f"{REDIS_HOST}/{db}"
    finally:
        if client.get(CLAIM_KEY) == token.encode():
            client.flushdb()
        client.close()


@pytest.fixture
def lora_dir(tmp_path: Path, settings) -> Path:
    root = tmp_path / "loras"
    root.mkdir()
    settings.LORAFORGE_LORA_DIRS = [root]
    return root


@pytest.fixture
def api_key(db) -> str:
    return api_key_create(name="tests").plain_key


@pytest.fixture
def read_only_key(db) -> str:
    return api_key_create(name="reader", read_only=True).plain_key


@pytest.fixture
def api(api_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=api_key)
    return client


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture
def fake_sdnext():
    """A running fake SDNext server (tests/fakes/sdnext), stopped after the test."""
    from tests.fakes.sdnext import FakeSDNext

    fake = FakeSDNext(steps_delay=0.002)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def sent_tasks(monkeypatch) -> list[tuple[str, list, dict]]:
    """Celery's ``send_task`` (the one way jobs are enqueued) recorded as ``(name, args, options)``; each send
    answers a result whose id is ``task-<n>``."""
    from types import SimpleNamespace

    sent: list[tuple[str, list, dict]] = []

    def send_task(name: str, args: list | None = None, **options: object) -> SimpleNamespace:
        sent.append((name, list(args or []), options))
        return SimpleNamespace(id=f"task-{len(sent)}")

    monkeypatch.setattr("loraforge.celery.app.send_task", send_task)
    return sent
