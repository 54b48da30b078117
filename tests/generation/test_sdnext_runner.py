"""The ``sdnext`` runner against the fake SDNext over real HTTP (SPEC 6.2.3, 6.3, 7); our client is never
patched. Threads touch the database (the progress poller), hence transactional tests."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image

from deliveries.models import DeliveryJob
from deliveries.services import delivery_job_cancel
from generation.models import GenerationBackend, GenerationResult
from generation.results.files import job_directory
from loraforge.media import media_url
from tests.factories import AdapterFactory
from tests.fakes.sdnext import FakeSDNext
from tests.generation.factories import GenerationBackendFactory
from tests.progress_events import EventRecorder

pytestmark = pytest.mark.django_db(transaction=True)

TXT2IMG = "/sdapi/v1/txt2img"
PROGRESS = "/sdapi/v1/progress"


@pytest.fixture
def fake():
    server = FakeSDNext(steps_delay=0.01)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def backend(fake, sdnext_settings):
    return GenerationBackendFactory(name="main", url=fake.url)


def calls(fake: FakeSDNext, path: str = TXT2IMG) -> list:
    return [request for request in fake.requests if request.path.endswith(path)]


def job_events(recorder: EventRecorder, job: DeliveryJob) -> list[dict]:
    return [event for event in recorder.events() if event["data"].get("job_id") == str(job.pk)]


def media_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


# --- success -----------------------------------------------------------------------------------


def test_a_generation_stores_files_rows_and_result(fake, backend, generation_job, run_job):
    job = run_job(generation_job(batch_size=2, seed=1234))
    assert (job.status, job.progress, job.error, job.error_code) == ("succeeded", 1.0, None, None)
    assert (job.backend_id, job.backend_name, job.attempts) == (backend.pk, "main", 1)

    results = list(GenerationResult.objects.filter(job=job).order_by("index"))
    folder = f"generations/{job.created_at.astimezone(UTC):%Y/%m/%d}/{job.pk}"
    assert folder == job_directory(job.pk, job.created_at)
    assert [result.file for result in results] == [f"{folder}/000.jpg", f"{folder}/001.jpg"]
    for index, result in enumerate(results):
        path = Path(settings.MEDIA_ROOT) / result.file
        data = path.read_bytes()
        assert data[:3] == b"\xff\xd8\xff"
        assert (result.content_type, result.size_bytes) == ("image/jpeg", len(data))
        assert (result.width, result.height) == (64, 64)
        with Image.open(path) as image:
            assert image.size == (64, 64)
        assert result.seed == 1234 + index
        assert result.infotext.startswith("a lighthouse at dusk\nSteps: 4")
        assert f"Seed: {1234 + index}" in result.infotext

    assert job.result == {
        "status": "completed",
        "images": [media_url(result.file) for result in results],
        "generation_info": job.result["generation_info"],
        "warnings": [],
        "error_message": None,
        "error_code": None,
        "backend": "main",
    }
    assert job.result["images"][0] == f"/media/{folder}/000.jpg"
    info = job.result["generation_info"]
    assert (info["seed"], info["all_seeds"], info["width"]) == (1234, [1234, 1235], 64)
    assert not {"all_prompts", "all_negative_prompts", "infotexts"} & set(info)


def test_success_counts_usage_marks_healthy_and_frees_the_lease(fake, backend, generation_job, run_job):
    style = AdapterFactory(sdnext_name="detail_tweaker", usage_count=4)
    unused = AdapterFactory(sdnext_name="pixel_art")
    backend.healthy, backend.version_info = None, {"app": "sd.next"}
    backend.save()
    job = run_job(generation_job(prompt="a fox <lora:detail_tweaker:0.6>", links=[(style, 0.6)]))
    assert job.status == "succeeded"
    style.refresh_from_db()
    unused.refresh_from_db()
    assert (style.usage_count, style.last_used_at) == (5, job.finished_at)
    assert (unused.usage_count, unused.last_used_at) == (0, None)
    backend.refresh_from_db()
    assert (backend.healthy, backend.last_error, backend.version_info) == (True, None, {"app": "sd.next"})
    assert (backend.lease_job, backend.lease_expires_at) == (None, None)
    assert backend.last_used_at is not None


def test_events_end_with_one_generation_complete(fake, backend, generation_job, run_job):
    recorder = EventRecorder()
    job = run_job(generation_job())
    events = job_events(recorder, job)
    types = [event["type"] for event in events]
    assert types.count("generation_complete") == 1
    assert types[-1] == "generation_complete"
    assert set(types[:-1]) == {"progress_update"}
    updates = [event["data"] for event in events if event["type"] == "progress_update"]
    assert updates[0]["status"] == "processing"
    assert (updates[-1]["status"], updates[-1]["progress"], updates[-1]["progress_percent"]) == ("completed", 1.0, 100)
    assert [update["progress"] for update in updates] == sorted(update["progress"] for update in updates)
    complete = events[-1]["data"]
    assert (complete["status"], complete["error_code"], complete["images"]) == ("completed", None, job.result["images"])
    assert complete["generation_info"]["seed"] == 1234


def test_a_channel_layer_outage_never_fails_the_job(fake, backend, generation_job, run_job, monkeypatch, caplog):
    class Down:
        async def group_send(self, group: str, message: dict) -> None:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("channels.layers.get_channel_layer", lambda: Down())
    job = run_job(generation_job())
    assert (job.status, job.progress, job.error_code) == ("succeeded", 1.0, None)
    assert GenerationResult.objects.filter(job=job).count() == 1
    assert "Could not publish generation_complete" in caplog.text


def test_progress_is_written_while_sdnext_samples(fake, backend, generation_job, start_job, wait_for):
    fake.steps_delay = 0.03
    recorder = EventRecorder()
    job = generation_job(steps=40)
    thread = start_job(job)

    def sampling() -> bool:
        job.refresh_from_db()
        return job.status == "running" and job.progress > 0 and job.current_step is not None

    wait_for(sampling, what="a progress write")
    assert job.total_steps == 40
    assert 0 < job.progress <= 0.99
    assert job.heartbeat_at is not None
    thread.join(timeout=30)
    job.refresh_from_db()
    assert job.status == "succeeded"
    updates = [event["data"] for event in job_events(recorder, job) if event["type"] == "progress_update"]
    assert any(0 < update["progress"] < 1 and update["total_steps"] == 40 for update in updates)


# --- faults (SPEC 6.3.6, 7) ---------------------------------------------------------------------

FAULTS = [
    ("error_500", "backend_error", "SDNext error 500: CUDA out of memory"),
    (
        "validation_422",
        "backend_rejected",
        "SDNext rejected the request (HTTP 422): body.steps: Input should be a valid integer, unable to parse "
        "string as an integer",
    ),
    ("sampler_404", "backend_error", "SDNext error 404: Sampler not found"),
    ("rate_limit_429", "backend_rate_limited", "SDNext rate limit exceeded (HTTP 429)"),
    (
        "no_images",
        "no_images",
        "SDNext returned no images (the model may not be loaded, or the generation was aborted)",
    ),
    ("invalid_json", "backend_invalid_response", "SDNext returned an invalid response"),
    ("bad_images", "invalid_images", "SDNext returned no decodable images"),
]


@pytest.mark.parametrize(("fault", "code", "error"), FAULTS, ids=[fault for fault, _, _ in FAULTS])
def test_sdnext_faults_fail_the_job(fake, backend, generation_job, run_job, fault, code, error):
    fake.set_fault(fault)
    recorder = EventRecorder()
    job = run_job(generation_job())
    assert (job.status, job.error_code, job.error) == ("failed", code, error)
    assert job.result is not None
    assert (job.result["status"], job.result["error_message"], job.result["error_code"]) == ("failed", error, code)
    assert (job.result["images"], job.result["backend"]) == ([], "main")
    assert len(calls(fake)) == 1  # HTTP errors are not retried
    assert not GenerationResult.objects.filter(job=job).exists()
    assert media_files() == []
    backend.refresh_from_db()
    assert (backend.healthy, backend.lease_job) == (None, None)
    events = job_events(recorder, job)
    assert [event["type"] for event in events][-2:] == ["progress_update", "generation_complete"]
    assert events[-1]["data"]["error_message"] == error


def test_an_empty_info_string_is_stored_as_an_empty_object(fake, backend, generation_job, run_job, api):
    """SPEC 6.3.4: ``info: ""`` → ``{}`` plus a warning, in the job detail, the progress and generation_complete."""
    fake.set_fault("empty_info")
    recorder = EventRecorder()
    job = run_job(generation_job())
    assert job.status == "succeeded"
    assert (job.result["generation_info"], job.result["warnings"]) == ({}, ["SDNext returned no generation info"])
    assert api.get(f"/api/v1/generation/progress/{job.pk}").json()["generation_info"] == {}
    assert api.get(f"/api/v1/deliveries/{job.pk}").json()["delivery"]["result"]["generation_info"] == {}
    complete = job_events(recorder, job)[-1]
    assert (complete["type"], complete["data"]["generation_info"]) == ("generation_complete", {})


def test_bad_images_are_reported_per_image(fake, backend, generation_job, run_job):
    fake.set_fault("bad_images")
    job = run_job(generation_job(batch_size=2))
    assert job.result["warnings"] == ["Image 0 could not be decoded", "Image 1 could not be decoded"]


def test_refused_after_every_attempt_marks_the_backend_unhealthy(fake, backend, generation_job, run_job):
    fake.set_fault("refused")
    job = run_job(generation_job())
    assert (job.status, job.error_code) == ("failed", "backend_unreachable")
    assert job.error == "Cannot reach SDNext backend 'main': connection refused (after 3 attempts)"
    backend.refresh_from_db()
    assert (backend.healthy, backend.last_error, backend.lease_job) == (False, "connection refused", None)


def test_reset_connections_are_retried(fake, backend, generation_job, run_job, sdnext_settings):
    sdnext_settings.SDNEXT_RETRIES = 2
    fake.set_fault("reset")
    job = run_job(generation_job())
    assert (job.status, job.error_code) == ("failed", "backend_unreachable")
    assert job.error == "Cannot reach SDNext backend 'main': connection reset (after 2 attempts)"
    assert len(calls(fake)) == 2


def test_a_url_that_is_not_sdnext(fake, backend, generation_job, run_job):
    GenerationBackend.objects.filter(pk=backend.pk).update(url=fake.url + "/not-sdnext")
    job = run_job(generation_job())
    assert (job.status, job.error_code) == ("failed", "backend_error")
    assert job.error == "SDNext error 404: Not Found (is the URL an SDNext server?)"


def test_rejected_credentials_mark_the_backend_unhealthy(sdnext_settings, generation_job, run_job):
    secured = FakeSDNext(auth=("forge", "letmein"), steps_delay=0.01)
    secured.start()
    try:
        backend = GenerationBackendFactory(name="locked", url=secured.url, username="forge", password="wrong")
        job = run_job(generation_job())
    finally:
        secured.stop()
    assert (job.status, job.error_code) == ("failed", "backend_auth")
    assert job.error == "SDNext backend 'locked' rejected the credentials (HTTP 401)"
    backend.refresh_from_db()
    assert (backend.healthy, backend.last_error) == (False, "HTTP 401")


def test_read_timeout_interrupts_sdnext(fake, backend, generation_job, run_job):
    GenerationBackend.objects.filter(pk=backend.pk).update(timeout_seconds=1)
    fake.set_fault("hang")
    job = run_job(generation_job())
    assert (job.status, job.error_code) == ("failed", "backend_timeout")
    assert job.error == "SDNext backend 'main' did not finish within 1 s; generation interrupted"
    assert fake.interrupts == 3
    assert len(calls(fake)) == 1
    backend.refresh_from_db()
    assert (backend.healthy, backend.lease_job) == (None, None)


def test_a_lora_sdnext_did_not_load_is_a_warning(fake, backend, generation_job, run_job):
    known = AdapterFactory(sdnext_name="detail_tweaker")
    missing = AdapterFactory(sdnext_name="not_on_the_server")
    job = generation_job(
        prompt="x <lora:detail_tweaker:0.6> <lora:not_on_the_server:0.8>", links=[(known, 0.6), (missing, 0.8)]
    )
    job = run_job(job)
    assert job.status == "succeeded"
    assert job.result["warnings"] == ["LoRA 'not_on_the_server' was not loaded by SDNext"]
    assert job.result["generation_info"]["extra_generation_params"] == {"LoRA networks": "detail_tweaker"}


def test_storage_failure_fails_the_job(fake, backend, generation_job, run_job, sdnext_settings, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    sdnext_settings.MEDIA_ROOT = blocker / "media"
    job = run_job(generation_job())
    assert (job.status, job.error_code) == ("failed", "storage_error")
    assert job.error == "Could not store generated images: Not a directory"
    assert not GenerationResult.objects.filter(job=job).exists()


# --- cancellation (SPEC 6.2.4) ------------------------------------------------------------------


def test_cancel_while_running_interrupts_and_discards(fake, backend, generation_job, start_job, wait_for):
    fake.set_fault("hang")  # sampling stalls until an interrupt arrives
    recorder = EventRecorder()
    job = generation_job()
    thread = start_job(job)
    wait_for(lambda: calls(fake, PROGRESS) and DeliveryJob.objects.get(pk=job.pk).status == "running", what="polls")
    delivery_job_cancel(job=DeliveryJob.objects.get(pk=job.pk))
    thread.join(timeout=30)
    assert not thread.is_alive()

    job.refresh_from_db()
    assert (job.status, job.error_code, job.error) == ("cancelled", "cancelled", "Cancelled by user")
    assert job.result is not None
    assert job.result["status"] == "cancelled"
    assert fake.interrupts >= 1
    assert not GenerationResult.objects.filter(job=job).exists()
    assert media_files() == []
    backend.refresh_from_db()
    assert backend.lease_job is None
    events = job_events(recorder, job)
    types = [event["type"] for event in events]
    assert types.count("generation_complete") == 1
    assert types[-1] == "generation_complete"
    assert events[-1]["data"]["status"] == "cancelled"
    assert events[-2]["data"]["status"] == "cancelled"


def test_a_terminal_write_that_loses_deletes_the_files(fake, backend, generation_job, sdnext_settings):
    from generation import runner
    from generation.sdnext.response import parse_txt2img

    job = generation_job()
    assert job.start(worker="tests", backend=backend)
    stale = DeliveryJob.objects.get(pk=job.pk)
    delivery_job_cancel(job=job)
    reply = calls_and_reply(fake)
    parsed = parse_txt2img(reply)
    assert parsed.images
    recorder = EventRecorder()
    runner._succeed(stale, backend, parsed)
    stale.refresh_from_db()
    assert stale.status == "cancelled"
    assert not GenerationResult.objects.filter(job=job).exists()
    assert media_files() == []
    assert job_events(recorder, job) == []


def calls_and_reply(fake: FakeSDNext) -> bytes:
    """A real txt2img answer body from the fake (for the runner's own storing step)."""
    import requests

    response = requests.post(
        fake.url + TXT2IMG, json={"prompt": "x", "steps": 2, "width": 64, "height": 64}, timeout=30
    )
    assert response.status_code == 200
    assert json.loads(response.content)["images"]
    return response.content
