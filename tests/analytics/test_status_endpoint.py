"""``GET /system/status`` (SPEC 5.10, 6.9) in the embedded shape: shape, blocks, numbers and every warning."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from analytics.status import system_status
from deliveries.models import DeliveryJob
from generation.models import GenerationBackend
from loraforge.models.jobs import BackgroundJob, BackgroundJobKind, JobStatus

pytestmark = pytest.mark.django_db

URL = "/api/v1/system/status"
TOP_KEYS = {
    "status", "message", "version", "mode", "auth", "warnings", "last_updated", "updated_at", "gpu_available",
    "gpu_status", "memory_used", "memory_total", "queue_length", "active_workers", "backend", "queue_eta_seconds",
    "database", "redis", "celery", "queue", "backends", "sdnext", "gpu", "metrics", "disk", "importer",
    "recommendations", "thresholds",
}  # fmt: skip


def _job(status: str, *, kind: str = "generation", **fields) -> DeliveryJob:
    mode = "sdnext" if kind == "generation" else "cli"
    return DeliveryJob.objects.create(kind=kind, mode=mode, prompt="a prompt", status=status, **fields)


@pytest.mark.parametrize("path", [URL, URL + "/", "/v1/system/status", "/v1/system/status/"])
def test_status_answers_on_every_prefix_with_the_documented_keys(api, worker_running, path):
    response = api.get(path)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == TOP_KEYS
    assert body["message"] == "System status collected successfully"
    assert body["version"] == "1.0.0"
    assert (body["mode"], body["auth"], body["backend"]) == ("embedded", "on", "in-memory")
    assert body["last_updated"].endswith("Z")
    assert body["updated_at"].endswith("Z")


def test_anonymous_status_is_401(anon):
    response = anon.get(URL)
    assert response.status_code == 401
    assert response.json()["detail"] == "Authentication required"


def test_a_quiet_embedded_host_is_healthy_without_warnings(api, worker_running):
    body = api.get(URL).json()
    assert body["status"] == "healthy"
    assert body["warnings"] == []
    assert body["celery"]["mode"] == "embedded"
    assert body["celery"]["ok"] is True
    assert body["celery"]["queue_depth"] is None
    assert [worker["ok"] for worker in body["celery"]["workers"]] == [True]
    assert body["active_workers"] == 1
    assert body["redis"] == {"configured": False, "ok": None, "latency_ms": None, "error": None}
    assert body["database"]["ok"] is True
    assert body["database"]["engine"] in ("sqlite", "postgresql")
    assert body["thresholds"] == {"queue": {"active_warning": 5, "failed_warning": 5}, "disk": {"percent_warning": 100}}


def test_no_embedded_worker_is_a_warning(api):
    body = api.get(URL).json()
    assert body["celery"] == {"mode": "embedded", "ok": False, "workers": [], "error": None, "queue_depth": None}
    assert body["active_workers"] == 0
    assert body["warnings"] == ["No Celery worker responded"]
    assert body["status"] == "warning"


def test_a_cpu_only_host_reports_no_gpu_and_host_memory_without_a_warning(api, worker_running):
    body = api.get(URL).json()
    assert body["gpu_available"] is False
    assert body["gpu_status"] == "unavailable"
    assert body["gpu"] == {"available": False, "source": None, "devices": []}
    assert body["metrics"]["gpus"] == []
    assert body["memory_total"] == body["metrics"]["memory_total"] > 0
    assert body["recommendations"]["gpu_available"] is False
    assert body["warnings"] == []


def test_metrics_read_the_host(api, worker_running):
    metrics = api.get(URL).json()["metrics"]
    assert 0 <= metrics["cpu_percent"] <= 100
    assert 0 < metrics["memory_percent"] < 100
    assert 0 < metrics["memory_used"] < metrics["memory_total"]
    assert 0 < metrics["disk_used"] < metrics["disk_total"]
    assert metrics["uptime_seconds"] > 0
    assert metrics["timestamp"].endswith("Z")


# --- queue ---------------------------------------------------------------------------------------


def test_queue_counts_deliveries_by_state(api, worker_running):
    now = timezone.now()
    _job("pending")
    _job("pending", kind="delivery")
    _job("running")
    _job("succeeded")
    _job("failed", finished_at=now - timedelta(minutes=5))
    _job("failed", finished_at=now - timedelta(hours=3))
    _job("failed", kind="delivery", finished_at=now - timedelta(days=2))  # history: generations come from rollups
    body = api.get(URL).json()
    assert body["queue"] == {"total": 7, "active": 3, "pending": 2, "running": 1, "failed": 3, "failed_last_hour": 1}
    assert body["queue_length"] == 3
    assert body["warnings"] == []


def test_active_jobs_above_the_threshold_warn(api, worker_running, settings):
    settings.LORAFORGE_STATUS_ACTIVE_WARNING = 1
    _job("pending")
    _job("running")
    body = api.get(URL).json()
    assert body["warnings"] == ["2 active jobs exceed the warning threshold (1)"]
    assert body["status"] == "warning"


def test_failures_in_the_last_hour_above_the_threshold_warn_but_old_ones_do_not(api, worker_running, settings):
    settings.LORAFORGE_STATUS_FAILED_WARNING = 2
    now = timezone.now()
    for minutes in (1, 10, 50):
        _job("failed", finished_at=now - timedelta(minutes=minutes))
    for hours in (2, 5, 30):
        _job("failed", finished_at=now - timedelta(hours=hours))
    body = api.get(URL).json()
    assert body["warnings"] == ["3 jobs failed in the last hour"]
    assert body["queue"]["failed"] == 6


def test_queue_eta_is_null_without_history(api, worker_running):
    _job("pending")
    assert api.get(URL).json()["queue_eta_seconds"] is None


def test_queue_eta_is_pending_generations_times_the_mean_duration_over_enabled_backends(api, worker_running):
    now = timezone.now()
    for seconds in (10, 20):
        _job("succeeded", started_at=now - timedelta(seconds=seconds), finished_at=now)
    _job("succeeded", kind="delivery", started_at=now - timedelta(hours=1), finished_at=now)  # not a generation
    for _ in range(3):
        _job("pending")
    _job("pending", kind="delivery")
    _job("running")
    for name in ("one", "two"):
        GenerationBackend.objects.create(name=name, url=f"http://127.0.0.1:9/{name}", enabled=True)
    GenerationBackend.objects.create(name="off", url="http://127.0.0.1:9/off", enabled=False)
    _cached_healthy()
    assert api.get(URL).json()["queue_eta_seconds"] == 22.5  # 3 x 15 s / 2


def test_the_mean_duration_covers_the_last_twenty_succeeded_generations():
    now = timezone.now()
    for index in range(25):
        seconds = 100 if index < 5 else 4  # the five oldest are slow and left out
        finished = now - timedelta(minutes=60 - index)
        _job("succeeded", started_at=finished - timedelta(seconds=seconds), finished_at=finished)
    _job("pending")
    assert system_status()["queue_eta_seconds"] == 4.0


def _cached_healthy() -> None:
    from generation.backends.services import backend_health_record

    for backend in GenerationBackend.objects.filter(enabled=True):
        backend_health_record(backend=backend, healthy=True, version_info={"app": "sd.next"})


# --- importer, disk ------------------------------------------------------------------------------


def test_importer_is_null_before_any_scan(api, worker_running, lora_dir):
    importer = api.get(URL).json()["importer"]
    assert importer == {
        "lora_dirs": [str(lora_dir)],
        "last_scan_at": None,
        "last_scan_status": None,
        "total_adapters": 0,
        "missing_files": 0,
        "duplicates": 0,
    }


def test_importer_reports_the_newest_scan_job(api, worker_running):
    now = timezone.now()
    older = BackgroundJob.objects.create(kind=BackgroundJobKind.SCAN, created_at=now - timedelta(hours=2))
    older.status, older.finished_at = JobStatus.SUCCEEDED, now - timedelta(hours=1)
    older.save()
    BackgroundJob.objects.create(kind=BackgroundJobKind.EMBEDDINGS, created_at=now)  # not a scan
    importer = api.get(URL).json()["importer"]
    assert importer["last_scan_status"] == "succeeded"
    assert importer["last_scan_at"] == _iso(older.finished_at)
    running = BackgroundJob.objects.create(
        kind=BackgroundJobKind.SCAN, status=JobStatus.RUNNING, created_at=now - timedelta(minutes=1)
    )
    importer = api.get(URL).json()["importer"]
    assert (importer["last_scan_status"], importer["last_scan_at"]) == ("running", _iso(running.created_at))


def _iso(value) -> str:
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")


def test_importer_counts_missing_files_and_duplicates(api, worker_running):
    from tests.factories import AdapterFactory

    AdapterFactory(missing_since=timezone.now())
    AdapterFactory(duplicate_paths=["/srv/loras/copy.safetensors"])
    AdapterFactory()
    importer = api.get(URL).json()["importer"]
    assert (importer["total_adapters"], importer["missing_files"], importer["duplicates"]) == (3, 1, 1)


def test_disk_content_bytes_come_from_database_sums(api, worker_running, lora_dir, tmp_path):
    from tests.factories import AdapterFactory

    other = tmp_path / "other"
    other.mkdir()
    django_settings.LORAFORGE_LORA_DIRS = [lora_dir, other]
    AdapterFactory(file_path=str(lora_dir / "a.safetensors"), file_size=1000)
    AdapterFactory(file_path=str(lora_dir / "sub" / "b.safetensors"), file_size=234)
    AdapterFactory(file_path=str(lora_dir / "gone.safetensors"), file_size=99, missing_since=timezone.now())
    AdapterFactory(file_path=str(other / "c.safetensors"), file_size=5)
    AdapterFactory(file_path=str(lora_dir) + "-sibling/d.safetensors", file_size=7)  # a prefix, not inside
    _result(size=300, index=0)
    _result(size=45, index=1)
    disk = api.get(URL).json()["disk"]
    assert [(folder["path"], folder["exists"], folder["content_bytes"]) for folder in disk["loras"]] == [
        (str(lora_dir), True, 1234),
        (str(other), True, 5),
    ]
    assert disk["media"]["content_bytes"] == 345
    assert disk["data"]["content_bytes"] == 345  # no backups yet
    assert disk["data"]["path"] == str(django_settings.DATA_DIR)
    assert 0 < disk["data"]["used_bytes"] < disk["data"]["total_bytes"]
    assert 0 < disk["data"]["percent"] < 100


def _result(*, size: int, index: int):
    from generation.models import GenerationResult

    job = _job("succeeded")
    return GenerationResult.objects.create(
        job=job, index=index, file=f"generations/{job.pk}/{index:03d}.png", content_type="image/png", size_bytes=size
    )


def test_disk_usage_above_the_threshold_warns_per_path(api, worker_running, settings):
    settings.LORAFORGE_DISK_WARNING_PERCENT = 1
    body = api.get(URL).json()
    percent = body["disk"]["data"]["percent"]
    assert f"Disk usage of {settings.DATA_DIR} is {percent}%" in body["warnings"]
    assert all(warning.startswith("Disk usage of ") for warning in body["warnings"])
    assert body["status"] == "warning"


def test_a_missing_lora_folder_warns(api, worker_running, settings, tmp_path):
    missing = tmp_path / "not-there"
    settings.LORAFORGE_LORA_DIRS = [missing]
    body = api.get(URL).json()
    assert body["warnings"] == [f"LoRA folder does not exist: {missing}"]
    folder = body["disk"]["loras"][0]
    assert (folder["exists"], folder["total_bytes"], folder["percent"]) == (False, None, None)


def test_recommendations_block_reports_without_building_the_index(api, worker_running):
    from recommendations import index
    from recommendations.encoder import encoder_reset

    index.index_reset()
    encoder_reset()  # an earlier test in this process may have loaded the model: the status must not load it
    block = api.get(URL).json()["recommendations"]
    assert block["tfidf_ready"] is False
    assert index.index_peek() is None
    assert set(block) == {"tfidf_ready", "semantic_available", "models_loaded", "embedding_model", "gpu_available"}
    assert block["models_loaded"] is False


def test_status_answers_quickly_on_a_quiet_host(api, worker_running):
    api.get(URL)
    started = time.monotonic()
    assert api.get(URL).status_code == 200
    assert time.monotonic() - started < 1.5


def test_every_folder_path_is_a_string(api, worker_running, lora_dir: Path):
    disk = api.get(URL).json()["disk"]
    assert disk["media"]["path"] == str(django_settings.MEDIA_ROOT)


def test_a_failed_database_probe_makes_the_status_an_error(api, worker_running, monkeypatch):
    failed = {"engine": "sqlite", "ok": False, "latency_ms": None, "error": "OperationalError"}
    monkeypatch.setattr("analytics.status.assembler.database_status", lambda: failed)
    body = api.get(URL).json()
    assert body["status"] == "error"
    assert body["warnings"] == ["Database unavailable"]
    assert body["database"] == failed


def test_the_status_uses_a_bounded_number_of_queries(api, worker_running, django_assert_max_num_queries):
    from generation.backends.services import backend_health_record

    for name in ("a", "b", "c"):
        backend = GenerationBackend.objects.create(name=name, url=f"http://127.0.0.1:9/{name}")
        backend_health_record(backend=backend, healthy=True)
    api.get(URL)
    # 12 = the key, the database probe, backends, 4 job figures, background jobs, adapters, and the disk block's sums
    # of stored images, adapter files per LoRA folder and backups (the backups table exists since issue 13).
    with django_assert_max_num_queries(12):
        assert api.get(URL).status_code == 200
