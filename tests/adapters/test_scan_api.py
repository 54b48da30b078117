"""Scans through the API and the task (SPEC 5.2, 6.2.2, 6.6.8): 202, 409, 400, 503, the report and its events."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from kombu.exceptions import OperationalError
from rest_framework.test import APIClient

from adapters import scan_service
from adapters.models import Adapter
from adapters.scan_service import ScanRequest, scan_run, scan_start, scan_summary
from adapters.tasks import scan_library
from loraforge.jobs import reporters
from loraforge.jobs.background import job_cancel
from loraforge.models import BackgroundJob
from tests.factories import AdapterFactory
from tests.lora_files import write_safetensors
from tests.progress_events import EventRecorder, job_events

URL = "/api/v1/adapters/scan"
REPORT_COUNTERS = (
    "files_seen", "hashed", "cached", "bytes_hashed", "created", "updated", "changed", "unchanged", "moved",
    "duplicates", "missing", "excluded", "errors",
)  # fmt: skip


def post(client, url: str, body=None):
    if body is None:
        return client.post(url)
    return client.post(url, data=json.dumps(body), content_type="application/json")


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


@pytest.fixture
def recorder():
    recorder = EventRecorder()
    yield recorder
    recorder.close()


# --- starting a scan ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_scan_is_accepted_as_a_pending_job(api, lora_dir):
    response = post(api, URL, {})
    assert response.status_code == 202
    job = BackgroundJob.objects.get()
    assert response.json() == {"job_id": str(job.pk), "kind": "scan", "status": "pending"}
    assert (job.kind, job.status, job.created_via) == ("scan", "pending", "api")
    assert job.params == {"paths": None, "dry_run": False, "force_rehash": False, "include_excluded": False}


@pytest.mark.django_db
def test_scan_body_is_optional(api, lora_dir):
    assert post(api, URL).status_code == 202


@pytest.mark.django_db
def test_scan_records_its_options_and_normalised_paths(api, lora_dir):
    (lora_dir / "anime").mkdir()
    body = {"paths": [str(lora_dir / "anime" / "."), "anime"], "dry_run": True, "force_rehash": True}
    assert post(api, URL, {**body, "include_excluded": True}).status_code == 202
    params = BackgroundJob.objects.get().params
    assert params == {
        "paths": [str(lora_dir / "anime")],
        "dry_run": True,
        "force_rehash": True,
        "include_excluded": True,
    }


@pytest.mark.django_db
def test_second_scan_is_409_with_the_running_job_id(api, lora_dir):
    first = post(api, URL, {}).json()["job_id"]
    body = problem(post(api, URL, {}), 409)
    assert body["detail"] == "A library scan is already running"
    assert body["job_id"] == first
    BackgroundJob.objects.filter(pk=first).update(status="running")
    assert problem(post(api, URL, {}), 409)["job_id"] == first
    assert BackgroundJob.objects.count() == 1


@pytest.mark.django_db
def test_a_finished_scan_does_not_block_the_next(api, lora_dir):
    BackgroundJob.objects.create(kind="scan", status="succeeded")
    BackgroundJob.objects.create(kind="backup", status="running")
    assert post(api, URL, {}).status_code == 202


@pytest.mark.django_db
def test_paths_outside_the_lora_folders_are_400_by_index(api, lora_dir, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (lora_dir / "escape").symlink_to(outside)
    paths = [str(lora_dir), str(outside), "../elsewhere", str(lora_dir / "escape"), "/etc/passwd"]
    body = problem(post(api, URL, {"paths": paths}), 400)
    message = ["path must be inside a configured LoRA folder"]
    assert body["errors"] == {"paths.1": message, "paths.2": message, "paths.3": message, "paths.4": message}
    assert body["detail"] == message[0]
    assert not BackgroundJob.objects.exists()


@pytest.mark.django_db
def test_a_path_the_system_cannot_look_up_is_accepted_like_a_missing_one(api, lora_dir):
    """A name component over 255 bytes (ENAMETOOLONG) is a path that does not exist, never a 500."""
    response = post(api, URL, {"paths": ["0" * 4000]})
    assert response.status_code == 202, response.content
    assert BackgroundJob.objects.get().params["paths"] == [str(lora_dir / ("0" * 4000))]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"paths": [f"p{n}" for n in range(101)]}, "paths"),
        ({"paths": "a,b"}, "paths"),
        ({"paths": [3]}, "paths.0"),
        ({"dry_run": "yes"}, "dry_run"),
        ({"force_rehash": 1}, "force_rehash"),
        ({"include_excluded": None}, "include_excluded"),
        ({"recursive": True}, "recursive"),
    ],
)
def test_bad_scan_bodies_are_400(api, lora_dir, body, key):
    assert key in problem(post(api, URL, body), 400)["errors"]


@pytest.mark.django_db(transaction=True)
def test_scan_is_queued_on_commit(api, lora_dir, sent_tasks):
    job_id = post(api, URL, {}).json()["job_id"]
    assert [(name, args) for name, args, _options in sent_tasks] == [("adapters.scan_library", [job_id])]
    assert BackgroundJob.objects.get(pk=job_id).celery_task_id == "task-1"


@pytest.mark.django_db(transaction=True)
def test_broker_down_fails_the_job_and_answers_503(api, lora_dir, monkeypatch, recorder):
    def refuse(name, args, **options):
        raise OperationalError("Error 111 connecting to localhost:6379. Connection refused.")

    monkeypatch.setattr("loraforge.celery.app.send_task", refuse)
    body = problem(post(api, URL, {}), 503)
    job = BackgroundJob.objects.get()
    assert body["type"] == "urn:loraforge:problem:service-unavailable"
    assert body["detail"] == "Task queue unavailable"
    assert body["job_id"] == str(job.pk)
    assert (job.status, job.error) == ("failed", "Task queue unavailable")
    assert [event["status"] for event in job_events(recorder.events())] == ["pending", "failed"]
    monkeypatch.setattr("loraforge.celery.app.send_task", lambda name, args, **options: SimpleNamespace(id="t"))
    assert post(api, URL, {}).status_code == 202  # a failed scan does not block the next one


# --- running it -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_task_runs_the_scan_and_publishes_its_progress(lora_dir, recorder, monkeypatch):
    monkeypatch.setattr(reporters, "PROGRESS_INTERVAL", 3600.0)  # only the forced write of the last file
    lora = write_safetensors(lora_dir / "ink.safetensors")
    job = scan_start(request=ScanRequest(), created_via="api", enqueue=False)

    scan_library(str(job.pk))  # the task body, called directly

    job.refresh_from_db()
    adapter = Adapter.objects.get()
    assert (job.status, job.progress, job.error) == ("succeeded", 1.0, None)
    assert job.started_at is not None
    assert job.finished_at is not None
    expected = dict.fromkeys(REPORT_COUNTERS, 0)
    expected.update(files_seen=1, hashed=1, bytes_hashed=lora.stat().st_size, created=1)
    assert job.result == {
        "dry_run": False,
        "roots": [str(lora_dir)],
        **expected,
        "duration_seconds": job.result["duration_seconds"],
        "items": [{"path": str(lora), "status": "created", "adapter_id": str(adapter.pk), "detail": None}],
        "items_truncated": False,
    }
    assert job.message == scan_summary(job.result)
    base = {"job_id": str(job.pk), "kind": "scan", "result": None, "error": None, "snapshot": False}
    final = {key: value for key, value in job.result.items() if key not in ("items", "items_truncated")}
    assert job_events(recorder.events()) == [
        {**base, "status": "pending", "progress": 0.0, "message": ""},
        {**base, "status": "running", "progress": 0.0, "message": ""},
        {**base, "status": "running", "progress": 1.0, "message": "Hashing ink.safetensors (1/1)"},
        {**base, "status": "succeeded", "progress": 1.0, "message": job.message, "result": final},
    ]


@pytest.mark.django_db(transaction=True)
def test_progress_counts_processed_over_found_files(lora_dir, monkeypatch):
    monkeypatch.setattr(reporters, "PROGRESS_INTERVAL", 0.0)
    for index in range(4):
        write_safetensors(lora_dir / f"style_{index}.safetensors", seed=index)
    seen = []
    original = reporters.JobProgressReporter._write

    def spy(self):
        seen.append((self._progress, self._message))
        original(self)

    monkeypatch.setattr(reporters.JobProgressReporter, "_write", spy)
    job = scan_start(request=ScanRequest(), created_via="api", enqueue=False)
    scan_run(job_id=job.pk)
    progress = [value for value, message in seen if message.startswith("Hashing")]
    assert progress == [0.25, 0.5, 0.75, 1.0]
    assert all(message.endswith(f"({n}/4)") for n, (_v, message) in enumerate(seen[-4:], start=1))


@pytest.mark.django_db(transaction=True)
def test_dry_run_scan_reports_but_writes_nothing_to_the_library(lora_dir):
    write_safetensors(lora_dir / "ink.safetensors")
    job = scan_start(request=ScanRequest(dry_run=True), created_via="api", enqueue=False)
    scan_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.result["dry_run"], job.result["created"]) == ("succeeded", True, 1)
    assert not Adapter.objects.exists()


class CancelWhen:
    """A second reporter that cancels the job (as ``POST /jobs/{id}/cancel`` does) at one hook."""

    def __init__(self, job_id, hook: str) -> None:
        self.job_id, self.hook = job_id, hook

    def _cancel(self, hook: str) -> None:
        if hook == self.hook:
            job_cancel(job=BackgroundJob.objects.get(pk=self.job_id))

    def planned(self, **kwargs):
        self._cancel("planned")

    def bytes_read(self, count): ...

    def file_done(self, **kwargs):
        self._cancel("file_done")

    def cancelled(self):
        return False


@pytest.mark.django_db(transaction=True)
def test_cancel_stops_the_scan_and_keeps_the_partial_report(lora_dir, monkeypatch, recorder):
    monkeypatch.setattr(reporters, "CANCEL_CHECK_INTERVAL", 0.0)
    for index in range(3):
        write_safetensors(lora_dir / f"style_{index}.safetensors", seed=index)
    job = scan_start(request=ScanRequest(), created_via="api", enqueue=False)
    scan_run(job_id=job.pk, progress=CancelWhen(job.pk, "planned"))
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert (job.result["files_seen"], job.result["created"], job.result["items"]) == (3, 0, [])
    assert not Adapter.objects.exists()
    statuses = [(event["status"], event["result"]) for event in job_events(recorder.events())]
    partial = {key: value for key, value in job.result.items() if key not in ("items", "items_truncated")}
    assert statuses[-2:] == [("cancelled", None), ("cancelled", partial)]


@pytest.mark.django_db(transaction=True)
def test_cancel_after_the_last_check_keeps_the_full_report(lora_dir):
    write_safetensors(lora_dir / "ink.safetensors")
    job = scan_start(request=ScanRequest(), created_via="api", enqueue=False)
    scan_run(job_id=job.pk, progress=CancelWhen(job.pk, "file_done"))
    job.refresh_from_db()
    assert (job.status, job.result["created"]) == ("cancelled", 1)


@pytest.mark.django_db(transaction=True)
def test_task_leaves_a_finished_job_alone(lora_dir, recorder):
    job = BackgroundJob.objects.create(kind="scan", status="cancelled")
    scan_library(str(job.pk))
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert recorder.events() == []


@pytest.mark.django_db(transaction=True)
def test_redelivered_task_fails_its_job_when_the_heartbeat_is_stale(lora_dir, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.LORAFORGE_JOB_STALE_SECONDS = 60
    stale = timezone.now() - timedelta(minutes=5)
    job = BackgroundJob.objects.create(kind="scan", status="running", started_at=stale, heartbeat_at=stale)
    fresh = BackgroundJob.objects.create(kind="scan", status="running", started_at=timezone.now())
    fresh.heartbeat_at = timezone.now()
    fresh.save()
    scan_library(str(job.pk))
    scan_library(str(fresh.pk))
    job.refresh_from_db()
    fresh.refresh_from_db()
    assert (job.status, job.error) == ("failed", "Worker lost while running the job")
    assert fresh.status == "running"


@pytest.mark.django_db(transaction=True)
def test_unexpected_engine_error_fails_the_job(lora_dir, monkeypatch):
    def explode(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("adapters.scanner.engine.library_scan", explode)
    job = scan_start(request=ScanRequest(), created_via="api", enqueue=False)
    scan_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.error) == ("failed", "Scan failed: disk on fire")


def test_summary_line_matches_the_spec():
    report = {
        "roots": ["/srv/loras"], "files_seen": 120, "hashed": 5, "bytes_hashed": int(1.2 * 1024**3), "created": 5,
        "updated": 2, "changed": 0, "unchanged": 110, "moved": 1, "duplicates": 2, "missing": 0, "excluded": 0,
        "errors": 0, "duration_seconds": 4.1,
    }  # fmt: skip
    assert scan_summary(report) == (
        "Scanned 120 files in 1 folder: 5 created, 2 updated, 0 changed, 110 unchanged, 1 moved, 2 duplicates, "
        "0 missing, 0 excluded, 0 errors; hashed 5 files (1.2 GiB) in 4.1 s"
    )


@pytest.mark.parametrize(
    ("count", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 1024**2, "5.0 MiB"), (3 * 1024**4, "3.0 TiB")],
)
def test_byte_counts_are_binary_units(count, text):
    assert scan_service.format_bytes(count) == text


# --- rescan ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rescan_rereads_one_adapter(api, lora_dir):
    lora = write_safetensors(lora_dir / "ink.safetensors")
    adapter = Adapter.objects.get(
        pk=post(api, "/api/v1/adapters", {"name": "Ink", "file_path": str(lora)}).json()["adapter"]["id"]
    )
    response = post(api, f"/api/v1/adapters/{adapter.pk}/rescan?force_rehash=true")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"adapter", "report"}
    assert body["adapter"]["id"] == str(adapter.pk)
    assert body["report"] == {"path": str(lora), "status": "unchanged", "detail": None}


@pytest.mark.django_db
def test_rescan_of_a_vanished_file_marks_it_missing(api, lora_dir):
    lora = write_safetensors(lora_dir / "ink.safetensors")
    adapter_id = post(api, "/api/v1/adapters", {"name": "Ink", "file_path": str(lora)}).json()["adapter"]["id"]
    lora.unlink()
    body = post(api, f"/api/v1/adapters/{adapter_id}/rescan").json()
    assert body["report"]["status"] == "missing"
    assert body["adapter"]["file_missing"] is True
    assert api.get(f"/api/v1/adapters/{adapter_id}").json()["adapter"]["file_missing"] is True  # not a stale cache


@pytest.mark.django_db
@pytest.mark.parametrize("adapter_id", ["00000000-0000-4000-8000-000000000000", "nope"])
def test_rescan_of_an_unknown_adapter_is_404(api, adapter_id):
    assert problem(post(api, f"/api/v1/adapters/{adapter_id}/rescan"), 404)["detail"] == "Adapter not found"


@pytest.mark.django_db
def test_rescan_rejects_a_bad_force_rehash(api):
    adapter = AdapterFactory()
    assert (
        "force_rehash" in problem(post(api, f"/api/v1/adapters/{adapter.pk}/rescan?force_rehash=maybe"), 400)["errors"]
    )


# --- auth -----------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("suffix", ["scan", "{id}/rescan"])
def test_scan_routes_require_a_writable_key(read_only_key, suffix):
    adapter = AdapterFactory()
    url = f"/api/v1/adapters/{suffix.format(id=adapter.pk)}"
    assert problem(post(APIClient(), url, {}), 401)["detail"] == "Authentication required"
    reader = APIClient()
    reader.credentials(HTTP_X_API_KEY=read_only_key)
    assert problem(post(reader, url, {}), 403)["detail"] == "This API key is read-only"
    assert not BackgroundJob.objects.exists()


# --- admin ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_rescan_action_reports_the_counts(admin_client, api, lora_dir):
    kept = write_safetensors(lora_dir / "kept.safetensors", seed=1)
    gone = write_safetensors(lora_dir / "gone.safetensors", seed=2)
    ids = [
        post(api, "/api/v1/adapters", {"name": p.stem, "file_path": str(p)}).json()["adapter"]["id"]
        for p in (kept, gone)
    ]
    gone.unlink()
    response = admin_client.post(
        "/admin/adapters/adapter/", {"action": "rescan_selected", "_selected_action": ids}, follow=True
    )
    assert response.status_code == 200
    assert "Rescanned 2 adapter(s): 1 missing, 1 unchanged." in [
        str(message) for message in response.context["messages"]
    ]
    assert Adapter.objects.get(pk=ids[1]).missing_since is not None
