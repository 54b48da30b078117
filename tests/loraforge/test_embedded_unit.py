"""The embedded-worker switch, the ASGI lifespan handler and Celery's logging, without servers."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import textwrap
import threading
from typing import Any

import pytest

from loraforge import embedded, lifespan
from tests.processes import PYTHON, REPO_ROOT, child_env


@pytest.mark.parametrize(
    ("setting", "redis_url", "is_server", "wanted"),
    [
        ("auto", None, True, True),
        ("auto", None, False, False),
        ("auto", "redis://127.0.0.1:6379/0", True, False),
        ("auto", "redis://127.0.0.1:6379/0", False, False),
        ("on", None, True, True),
        ("on", None, False, True),
        ("on", "redis://127.0.0.1:6379/0", True, True),
        ("on", "redis://127.0.0.1:6379/0", False, True),
        ("off", None, True, False),
        ("off", None, False, False),
        ("off", "redis://127.0.0.1:6379/0", True, False),
        ("off", "redis://127.0.0.1:6379/0", False, False),
    ],
)
def test_embedded_worker_wanted(settings, setting: str, redis_url: str | None, is_server: bool, wanted: bool) -> None:
    settings.LORAFORGE_EMBEDDED_WORKER = setting
    settings.REDIS_URL = redis_url
    assert embedded.embedded_worker_wanted(is_server=is_server) is wanted


def _run_lifespan(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    inbox = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(asyncio.wait_for(lifespan.handle_lifespan(receive, send), timeout=30))
    return sent


STARTUP = {"type": "lifespan.startup"}
SHUTDOWN = {"type": "lifespan.shutdown"}


def test_lifespan_completes_startup_and_shutdown(monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(lifespan, "on_startup", lambda: calls.append("startup"))
    monkeypatch.setattr(lifespan, "on_shutdown", lambda: calls.append("shutdown"))

    sent = _run_lifespan([STARTUP, SHUTDOWN])

    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
    assert calls == ["startup", "shutdown"]


def test_lifespan_reports_startup_failed_when_startup_raises(monkeypatch) -> None:
    def broken() -> None:
        raise RuntimeError("broker unreachable")

    monkeypatch.setattr(lifespan, "on_startup", broken)

    sent = _run_lifespan([STARTUP])

    assert sent == [{"type": "lifespan.startup.failed", "message": "broker unreachable"}]


def test_lifespan_reports_shutdown_failed_when_shutdown_raises(monkeypatch) -> None:
    def broken() -> None:
        raise RuntimeError("stuck")

    monkeypatch.setattr(lifespan, "on_startup", lambda: None)
    monkeypatch.setattr(lifespan, "on_shutdown", broken)

    sent = _run_lifespan([STARTUP, SHUTDOWN])

    assert sent == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.failed", "message": "stuck"},
    ]


@pytest.mark.django_db(transaction=True)
def test_startup_warns_without_api_key_and_starts_the_wanted_worker(settings, monkeypatch, caplog) -> None:
    settings.LORAFORGE_AUTH = True
    settings.LORAFORGE_API_KEY = None
    settings.LORAFORGE_EMBEDDED_WORKER = "on"
    started: list[bool] = []
    monkeypatch.setattr(embedded, "start_embedded_worker", lambda: started.append(True))

    with caplog.at_level(logging.WARNING, logger="loraforge.server"):
        lifespan.on_startup()

    assert lifespan.NO_API_KEY in caplog.messages
    assert started == [True]


@pytest.mark.django_db(transaction=True)
def test_startup_leaves_the_worker_off_when_not_wanted(settings, monkeypatch) -> None:
    settings.LORAFORGE_EMBEDDED_WORKER = "off"
    monkeypatch.setattr(embedded, "start_embedded_worker", lambda: pytest.fail("the worker must not start"))

    lifespan.on_startup()


class _StuckWorker:
    """A WorkController whose warm shutdown waits on a task that never ends."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def stop(self, in_sighandler: bool = False, exitcode: int | None = None) -> None:
        self.release.wait(30)


class _QuickWorker:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.stopped_with: int | None = None

    def start(self) -> None:
        self.done.wait(30)

    def stop(self, in_sighandler: bool = False, exitcode: int | None = None) -> None:
        self.stopped_with = exitcode
        self.done.set()


def test_stop_embedded_worker_stops_the_worker_thread(monkeypatch) -> None:
    worker = _QuickWorker()
    thread = threading.Thread(target=worker.start, daemon=True)
    thread.start()
    monkeypatch.setattr(embedded, "_running", embedded._Embedded(worker=worker, worker_thread=thread))

    assert embedded.stop_embedded_worker(timeout=10) is True

    assert worker.stopped_with == 0
    assert not thread.is_alive()
    assert embedded._running is None


def test_stop_embedded_worker_gives_up_after_its_timeout(monkeypatch) -> None:
    worker = _StuckWorker()
    thread = threading.Thread(target=worker.release.wait, args=(30,), daemon=True)
    thread.start()
    monkeypatch.setattr(embedded, "_running", embedded._Embedded(worker=worker, worker_thread=thread))

    try:
        assert embedded.stop_embedded_worker(timeout=0.3) is False
        assert embedded._running is None
    finally:
        worker.release.set()


def test_stop_embedded_worker_without_a_worker_is_a_no_op(monkeypatch) -> None:
    monkeypatch.setattr(embedded, "_running", None)

    assert embedded.stop_embedded_worker() is True


def test_start_reports_a_worker_that_died_while_starting() -> None:
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()

    with pytest.raises(RuntimeError, match="stopped while starting"):
        embedded._wait_ready(threading.Event(), dead, timeout=5)


CELERY_LOGGING_PROBE = textwrap.dedent(
    """
    import logging, sys
    import django
    django.setup()
    from loraforge.celery import app
    root = logging.getLogger()
    handlers, level, stdout = list(root.handlers), root.level, sys.stdout
    # What `celery worker` and `celery beat` do at start (--loglevel DEBUG, stdout redirection on).
    app.log.setup(loglevel="DEBUG", redirect_stdouts=True)
    assert root.handlers == handlers, (root.handlers, handlers)
    assert root.level == level, (root.level, level)
    assert sys.stdout is stdout, "stdout was redirected into a logger"
    assert not app.conf.worker_hijack_root_logger
    print("django logging kept")
    """
)


def test_celery_keeps_django_logging_in_worker_processes(tmp_path) -> None:
    env = child_env(LORAFORGE_DATA_DIR=str(tmp_path), LORAFORGE_LOG_LEVEL="warning", REDIS_URL=None)
    result = subprocess.run(
        [PYTHON, "-c", CELERY_LOGGING_PROBE],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django logging kept"


def test_embedded_worker_alive_follows_the_worker_and_beat_threads(monkeypatch) -> None:
    release = threading.Event()
    live = threading.Thread(target=release.wait, args=(30,), daemon=True)
    live.start()
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    try:
        monkeypatch.setattr(embedded, "_running", None)
        assert embedded.embedded_worker_alive() is False
        monkeypatch.setattr(embedded, "_running", embedded._Embedded(worker=None, worker_thread=live))
        assert embedded.embedded_worker_alive() is True
        monkeypatch.setattr(embedded, "_running", embedded._Embedded(worker=None, worker_thread=dead))
        assert embedded.embedded_worker_alive() is False  # the status must not call a dead worker running
        running = embedded._Embedded(worker=None, worker_thread=live, beat=None, beat_thread=dead)
        monkeypatch.setattr(embedded, "_running", running)
        assert embedded.embedded_worker_alive() is False
    finally:
        release.set()
