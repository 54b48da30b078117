"""What the server does with background jobs when it starts (SPEC 2 ``LORAFORGE_SCAN_ON_STARTUP``, 6.2.6)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from loraforge import embedded, lifespan
from loraforge.models import BackgroundJob

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queued(sent_tasks) -> list[tuple[str, list, dict]]:
    return sent_tasks


def job_ids(sent: list[tuple[str, list, dict]]) -> list[str]:
    return [args[0] for _name, args, _options in sent]


def test_scan_on_startup_queues_one_scheduled_scan(settings, lora_dir, queued):
    settings.LORAFORGE_SCAN_ON_STARTUP = True
    lifespan.on_startup()
    job = BackgroundJob.objects.get()
    assert (job.kind, job.status, job.created_via) == ("scan", "pending", "schedule")
    assert job_ids(queued) == [str(job.pk)]


def test_scan_on_startup_skips_when_a_scan_is_already_active(settings, lora_dir, queued, caplog):
    settings.LORAFORGE_SCAN_ON_STARTUP = True
    BackgroundJob.objects.create(kind="scan", status="running", heartbeat_at=timezone.now())
    with caplog.at_level(logging.INFO, logger="loraforge.adapters"):
        lifespan.on_startup()
    assert BackgroundJob.objects.count() == 1
    assert job_ids(queued) == []
    assert any("Start-up scan skipped" in message for message in caplog.messages)


def test_no_scan_on_startup_by_default(lora_dir, queued):
    lifespan.on_startup()
    assert not BackgroundJob.objects.exists()


def test_embedded_worker_start_recovers_jobs(settings, monkeypatch, queued):
    settings.LORAFORGE_EMBEDDED_WORKER = "on"
    monkeypatch.setattr(embedded, "start_embedded_worker", lambda: None)
    long_ago = timezone.now() - timedelta(hours=1)
    lost = BackgroundJob.objects.create(kind="scan", status="running", started_at=long_ago, heartbeat_at=long_ago)
    waiting = BackgroundJob.objects.create(kind="scan", status="pending")  # the in-memory broker lost its message
    lifespan.on_startup()
    lost.refresh_from_db()
    assert (lost.status, lost.error) == ("failed", "Worker lost while running the job")
    assert job_ids(queued) == [str(waiting.pk)]


def test_the_server_trims_its_heap_from_start_up_to_shut_down(settings, lora_dir, queued):
    import threading

    from loraforge import memory

    memory.stop_heap_trimmer()

    def trimming() -> bool:
        return any(thread.name == "heap-trimmer" for thread in threading.enumerate())

    lifespan.on_startup()
    assert trimming()
    lifespan.on_shutdown()
    assert not trimming()
