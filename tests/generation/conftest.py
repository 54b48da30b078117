"""Fixtures of the generation tests: an empty health cache per test, SDNext runner helpers, a media root."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _empty_health_cache() -> None:
    """The locmem cache outlives a test's rolled-back rows; health entries are keyed by backend id."""
    cache.clear()


# --- SDNext runner tests (test_sdnext_*.py, test_leases.py) -------------------------------------------


@pytest.fixture
def sdnext_settings(settings, tmp_path, monkeypatch):
    """Fast polling and retries, media under the test's tmp folder; returns ``settings``."""
    from generation.sdnext import client

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SDNEXT_POLL_INTERVAL = 0.2
    settings.SDNEXT_RETRIES = 3
    settings.LORAFORGE_QUEUE_WAIT_TIMEOUT = 3600
    monkeypatch.setattr(client, "RETRY_BASE_DELAY", 0.01)
    monkeypatch.setattr(client, "INTERRUPT_SPACING", 0.05)
    return settings


@pytest.fixture
def generation_job():
    """``generation_job(prompt=..., backend="sdnext", links=[(adapter, weight)], **generation_params)``: a
    pending sdnext job created directly (nothing enqueued)."""
    from deliveries.models import DeliveryJob
    from tests.factories import link_adapters

    def make(*, prompt="a lighthouse at dusk", backend="sdnext", links=(), **params):
        generation_params = {"prompt": prompt, "steps": 4, "width": 64, "height": 64, "seed": 1234, **params}
        job = DeliveryJob.objects.create(
            kind="generation",
            mode="sdnext",
            prompt=prompt,
            params={"generation_params": generation_params, "mode": "deferred", "save_images": True},
            requested_backend=backend,
            created_via="queue",
        )
        link_adapters(job, links)
        return job

    return make


@pytest.fixture
def wait_for():
    """``wait_for(condition, what=..., timeout=20)``: poll a condition until it holds (never a fixed sleep)."""
    import time

    def wait(condition, *, what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.02)

    return wait


@pytest.fixture
def run_job():
    """``run_job(job)``: ``deliveries.execution.delivery_run`` in this thread; returns the refreshed job."""
    from deliveries.execution import delivery_run

    def run(job, *, worker: str = "tests@host"):
        delivery_run(job_id=job.pk, worker=worker)
        job.refresh_from_db()
        return job

    return run


@pytest.fixture
def start_job():
    """``start_job(job)``: ``delivery_run`` in a thread (its own database connection); returns the thread."""
    import threading

    from django.db import connection

    from deliveries.execution import delivery_run

    threads = []

    def start(job, *, worker="tests@thread"):
        def target():
            try:
                delivery_run(job_id=job.pk, worker=worker)
            finally:
                connection.close()

        thread = threading.Thread(target=target, name=f"run-{job.pk}", daemon=True)
        thread.start()
        threads.append(thread)
        return thread

    yield start
    for thread in threads:
        thread.join(timeout=30)


@pytest.fixture
def media_root(tmp_path: Path, settings) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root
