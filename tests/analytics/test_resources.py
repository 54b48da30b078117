"""Resource samples (SPEC 3.6): host readings (psutil, else /proc), the sampling and pruning tasks, and beat's
schedule."""

from __future__ import annotations

import importlib
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from analytics import resources
from analytics.models import ResourceSample
from analytics.tasks import PRUNE_SAMPLES_TASK, RECORD_SAMPLE_TASK, prune_resource_samples, record_resource_sample

MEMINFO = """MemTotal:       16000000 kB
MemFree:         2000000 kB
MemAvailable:    4000000 kB
Buffers:          100000 kB
Cached:          1000000 kB
"""


def test_host_reading_with_psutil():
    reading = resources.host_reading(interval=0.05)
    assert 0 <= reading.cpu_percent <= 100
    assert 0 < reading.memory_percent < 100
    assert 0 < reading.memory_used_mb < reading.memory_total_mb


def test_without_psutil_memory_comes_from_proc_meminfo(monkeypatch, tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(MEMINFO)
    monkeypatch.setitem(sys.modules, "psutil", None)
    monkeypatch.setattr(resources, "PROC_MEMINFO", meminfo)
    assert resources.memory_usage() == (75.0, 11718, 15625)


def test_without_psutil_cpu_comes_from_proc_stat(monkeypatch, tmp_path):
    stat = tmp_path / "stat"
    lines = iter(["cpu  100 0 100 700 100 0 0 0 0 0\n", "cpu  160 0 140 760 140 0 0 0 0 0\n"])
    monkeypatch.setitem(sys.modules, "psutil", None)
    monkeypatch.setattr(resources, "PROC_STAT", stat)
    monkeypatch.setattr(resources.time, "sleep", lambda seconds: stat.write_text(next(lines)))
    stat.write_text(next(lines))
    assert resources.cpu_percent(interval=0.01) == 50.0  # 100 busy of 200 jiffies (idle + iowait = 100)


def test_without_psutil_the_real_proc_files_read(monkeypatch):
    monkeypatch.setitem(sys.modules, "psutil", None)
    percent, used, total = resources.memory_usage()
    assert 0 < percent < 100
    assert 0 < used < total
    assert 0 <= resources.cpu_percent(interval=0.05) <= 100
    assert resources.uptime_seconds() > 0


def test_disk_usage_of_a_missing_path_is_none(tmp_path):
    assert resources.disk_usage(tmp_path / "nope") is None
    usage = resources.disk_usage(tmp_path)
    assert usage is not None
    assert usage.used_bytes + usage.free_bytes <= usage.total_bytes


@pytest.mark.django_db
def test_the_sampling_task_records_a_row_without_gpu_on_a_cpu_host():
    sample = ResourceSample.objects.get(pk=record_resource_sample())
    assert sample.host
    assert 0 <= sample.cpu_percent <= 100
    assert 0 < sample.memory_percent < 100
    assert sample.memory_used_mb > 0
    assert sample.gpu_percent is None
    assert sample.gpu_memory_percent is None
    assert timezone.now() - sample.recorded_at < timedelta(seconds=10)


@pytest.mark.django_db
def test_the_sampling_task_records_the_first_gpu(fake_nvml):
    sample = ResourceSample.objects.get(pk=record_resource_sample())
    assert sample.gpu_percent == 37.0
    assert sample.gpu_memory_percent == 25.0


@pytest.mark.django_db
def test_prune_deletes_samples_past_the_retention(settings):
    settings.LORAFORGE_RESOURCE_RETENTION_DAYS = 7
    now = timezone.now()
    for days in (1, 6, 8, 30):
        ResourceSample.objects.create(
            recorded_at=now - timedelta(days=days), host="h", cpu_percent=1, memory_percent=1, memory_used_mb=1
        )
    assert prune_resource_samples() == 2
    kept = sorted((now - sample.recorded_at).days for sample in ResourceSample.objects.all())
    assert kept == [1, 6]


def test_tasks_are_named_json_only_on_the_default_queue():
    assert (record_resource_sample.name, prune_resource_samples.name) == (RECORD_SAMPLE_TASK, PRUNE_SAMPLES_TASK)
    for task in (record_resource_sample, prune_resource_samples):
        assert task.queue == "default"
        assert task.acks_late
        assert task.ignore_result
        assert task.time_limit
        assert task.soft_time_limit


def _schedule(settings, seconds: int) -> dict:
    import loraforge.celery_config as config

    settings.LORAFORGE_RESOURCE_SAMPLE_SECONDS = seconds
    try:
        return dict(importlib.reload(config).beat_schedule)
    finally:
        settings.LORAFORGE_RESOURCE_SAMPLE_SECONDS = 60
        importlib.reload(config)


def test_beat_samples_every_configured_period(settings):
    schedule = _schedule(settings, 30)
    entry = schedule["record-resource-sample"]
    assert (entry["task"], entry["schedule"], entry["options"]["queue"]) == (RECORD_SAMPLE_TASK, 30.0, "default")
    assert schedule["prune-resource-samples"]["task"] == PRUNE_SAMPLES_TASK
    assert schedule["prune-resource-samples"]["schedule"] == 3600.0


def test_beat_does_not_sample_when_the_period_is_zero(settings):
    schedule = _schedule(settings, 0)
    assert "record-resource-sample" not in schedule
    assert "prune-resource-samples" in schedule  # old samples still go


def test_the_celery_app_schedules_the_sampling_by_name():
    from loraforge.celery import app

    assert app.conf.beat_schedule["record-resource-sample"]["task"] == RECORD_SAMPLE_TASK
    assert RECORD_SAMPLE_TASK in app.tasks
    assert PRUNE_SAMPLES_TASK in app.tasks


@pytest.mark.django_db
def test_the_admin_lists_samples_read_only(admin_client):
    sample = ResourceSample.objects.create(
        recorded_at=timezone.now(), host="gpu-box", cpu_percent=12.5, memory_percent=40, memory_used_mb=2048
    )
    listing = admin_client.get("/admin/analytics/resourcesample/")
    assert listing.status_code == 200
    assert b"gpu-box" in listing.content
    assert admin_client.get("/admin/analytics/resourcesample/add/").status_code == 403
    detail = admin_client.get(f"/admin/analytics/resourcesample/{sample.pk}/change/")
    assert detail.status_code == 200
    assert b'name="host"' not in detail.content  # no input: read-only
    assert admin_client.post(f"/admin/analytics/resourcesample/{sample.pk}/delete/").status_code == 403


def test_a_cpu_reading_after_an_earlier_one_does_not_wait(monkeypatch):
    import time

    import psutil

    intervals: list[float | None] = []
    values = iter([25.0, 40.0])
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: intervals.append(interval) or next(values))
    monkeypatch.setattr(resources, "_cpu_last", None)
    assert resources.cpu_percent(interval=0.05) == 25.0  # the process's first reading spans the interval
    assert resources.cpu_percent(interval=0.05) == 25.0  # too soon after it: the same value, without reading
    time.sleep(0.06)
    assert resources.cpu_percent(interval=0.05) == 40.0  # since the previous reading, at once
    assert intervals == [0.05, None]
