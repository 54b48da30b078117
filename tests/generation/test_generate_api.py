"""``/generation/generate``, ``/compose-and-generate`` and ``/queue-generation`` as a client sees them
(SPEC 5.5.2, 5.1, 6.2.2, 6.2.7, 7).

Most tests use ``mode=deferred`` with the task queue replaced by a recorder. The end-to-end tests at the end run
each job in a worker thread against the fake SDNext (over real HTTP) and drive the ASGI application itself.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from deliveries.execution import delivery_run
from deliveries.models import DeliveryJob
from generation.jobs import services as job_services
from generation.models import GenerationResult
from loraforge.off_thread import in_own_connection
from tests.factories import AdapterFactory
from tests.generation.factories import GenerationBackendFactory, GenerationJobFactory, GenerationResultFactory
from tests.generation.test_results_api import field_error, problem
from tests.progress_events import EventRecorder

URL = "/api/v1/generation"
GENERATE = f"{URL}/generate"
COMPOSE = f"{URL}/compose-and-generate"
QUEUE = f"{URL}/queue-generation"
DEFERRED = "?mode=deferred"


def post(client, url: str, body) -> object:
    return client.post(url, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def sent(monkeypatch) -> list[str]:
    """The task queue, recording the job ids it is given."""
    queued: list[str] = []

    def send_task(name, args=None, **options):
        queued.append(args[0])
        return SimpleNamespace(id=f"task-{len(queued)}")

    monkeypatch.setattr("loraforge.celery.app.send_task", send_task)
    return queued


@pytest.fixture
def backend(db):
    return GenerationBackendFactory(name="gpu-1")


def only_job() -> DeliveryJob:
    [job] = DeliveryJob.objects.all()
    return job


# --- validation (SPEC 5.1, 7) ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", [GENERATE, QUEUE])
@pytest.mark.parametrize("prompt", ["", "   "])
def test_blank_prompt_is_400(api, backend, url, prompt):
    assert field_error(post(api, url, {"prompt": prompt}), "prompt") == "prompt must not be empty"
    assert not DeliveryJob.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("url", [GENERATE, QUEUE])
def test_missing_prompt_is_400(api, backend, url):
    assert field_error(post(api, url, {"steps": 20}), "prompt") == "This field is required."


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("steps", 0, None),
        ("steps", 151, None),
        ("steps", 5.5, "A valid integer is required."),
        ("steps", "20", "A valid integer is required."),
        ("width", 100, "width must be a multiple of 8"),
        ("width", 513, "width must be a multiple of 8"),
        ("width", 32, None),
        ("height", 4104, None),
        ("batch_size", 17, None),
        ("n_iter", 0, None),
        ("cfg_scale", 31, None),
        ("cfg_scale", "high", "A valid number is required."),
        ("seed", -2, None),
        ("denoising_strength", 1.5, None),
        ("negative_prompt", 5, "Not a valid string."),
        ("override_settings", {"outdir_samples": "/tmp"}, "override_settings may not change output or save settings"),
        ("unknown", 1, "Unknown field."),
    ],
)
def test_invalid_generation_params_are_400_on_their_key(api, backend, field, value, message):
    error = field_error(post(api, GENERATE + DEFERRED, {"prompt": "a cat", field: value}), field)

    if message is not None:
        assert error == message
    assert not DeliveryJob.objects.exists()


@pytest.mark.django_db
def test_batch_times_iterations_is_limited(api, backend):
    response = post(api, GENERATE + DEFERRED, {"prompt": "a cat", "batch_size": 16, "n_iter": 5})

    assert field_error(response, "batch_size") == "batch_size * n_iter must be at most 64"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "key", "message"),
    [
        ("mode=later", "mode", "mode must be one of: immediate, deferred"),
        ("return_format=xml", "return_format", "return_format must be one of: url, base64, file_path"),
        ("save_images=maybe", "save_images", "Must be a boolean (true/false/1/0/yes/no/on/off)."),
        ("backend=nope", "backend", "Unknown generation backend 'nope'"),
    ],
)
@pytest.mark.parametrize("url", [GENERATE, COMPOSE, QUEUE])
def test_invalid_query_parameters_are_400(api, backend, url, query, key, message):
    AdapterFactory(active=True)
    body = {} if url == COMPOSE else {"prompt": "a cat"}

    assert field_error(post(api, f"{url}?{query}", body), key) == message
    assert not DeliveryJob.objects.exists()


@pytest.mark.django_db
def test_disabled_backend_is_400(api, backend):
    GenerationBackendFactory(name="off", enabled=False)

    response = post(api, f"{GENERATE}?backend=off&mode=deferred", {"prompt": "a cat"})

    assert field_error(response, "backend") == "Generation backend 'off' is disabled"


@pytest.mark.django_db
@pytest.mark.parametrize("url", [GENERATE, QUEUE])
def test_no_enabled_backend_is_503_and_creates_nothing(api, url):
    GenerationBackendFactory(enabled=False)

    body = problem(post(api, url, {"prompt": "a cat"}), 503)

    assert body["type"] == "urn:loraforge:problem:service-unavailable"
    assert body["detail"] == "No enabled generation backend is configured"
    assert not DeliveryJob.objects.exists()


@pytest.mark.django_db
def test_body_must_be_json(api, backend):
    response = api.post(GENERATE, data=b'{"prompt": ', content_type="application/json")
    assert problem(response, 400)["detail"] == "Request body is not valid JSON."

    response = api.post(GENERATE, data=b'{"prompt": "x"}', content_type="text/plain")
    assert problem(response, 415)["detail"] == "Content-Type must be application/json"


# --- deferred generation and queueing -------------------------------------------------------------------


@pytest.mark.django_db
def test_deferred_generate_answers_queued_at_once(api, backend, sent):
    response = post(api, GENERATE + DEFERRED, {"prompt": "a cat", "steps": 8})

    assert response.status_code == 200
    job = only_job()
    assert response.json() == {
        "job_id": str(job.pk),
        "status": "queued",
        "images": None,
        "progress": 0.0,
        "progress_percent": 0,
        "current_step": None,
        "total_steps": None,
        "eta_seconds": None,
        "error_message": None,
        "error_code": None,
        "generation_info": None,
        "warnings": [],
        "backend": None,
    }


@pytest.mark.django_db
def test_generate_creates_a_generation_job_with_the_effective_params(api, backend, settings):
    settings.SDNEXT_DEFAULT_SAMPLER = "Euler a"

    post(api, f"{GENERATE}?mode=deferred&backend=gpu-1&return_format=file_path&save_images=no", {"prompt": " cat "})

    job = only_job()
    assert (job.kind, job.mode, job.status, job.created_via) == ("generation", "sdnext", "pending", "generate")
    assert (job.prompt, job.requested_backend) == ("cat", "gpu-1")
    assert job.params == {
        "generation_params": {
            "prompt": "cat",
            "negative_prompt": None,
            "steps": 20,
            "sampler_name": "Euler a",
            "cfg_scale": 7.0,
            "width": 512,
            "height": 512,
            "seed": -1,
            "batch_size": 1,
            "n_iter": 1,
            "denoising_strength": None,
            "checkpoint": None,
            "override_settings": None,
        },
        "mode": "deferred",
        "save_images": False,
        "return_format": "file_path",
        "backend": "gpu-1",
    }


@pytest.mark.django_db
def test_raw_prompt_links_the_adapters_it_names(api, backend):
    ink = AdapterFactory(name="Ink", sdnext_name="ink")
    AdapterFactory(sdnext_name="unused")

    post(api, GENERATE + DEFERRED, {"prompt": "a cat <lora:ink:0.6> <lora:unknown:1>"})

    links = list(only_job().adapter_links.values_list("adapter_id", "sdnext_name", "weight"))
    assert links == [(ink.pk, "ink", 0.6)]


@pytest.mark.django_db
def test_queue_generation_answers_202(api, backend, sent):
    response = post(api, QUEUE, {"prompt": "a cat"})

    assert response.status_code == 202
    job = only_job()
    assert response.json() == {"delivery_id": str(job.pk), "job_id": str(job.pk), "status": "queued"}
    assert (job.created_via, job.params["mode"], job.params["return_format"]) == ("queue", "deferred", "url")


@pytest.mark.django_db
def test_queue_generation_records_an_explicit_mode(api, backend):
    post(api, f"{QUEUE}?mode=immediate", {"prompt": "a cat"})

    assert only_job().params["mode"] == "immediate"


@pytest.mark.django_db
@pytest.mark.parametrize("url", [f"{GENERATE}/{DEFERRED}", f"/v1/generation/generate{DEFERRED}", f"{QUEUE}/"])
def test_every_documented_path_answers(api, backend, url):
    assert post(api, url, {"prompt": "a cat"}).status_code in (200, 202)


# --- compose-and-generate --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_compose_and_generate_uses_the_composed_prompt_and_links_its_adapters(api, backend):
    ink = AdapterFactory(name="Ink Sketch", sdnext_name="ink-sketch", weight=1.0, ordinal=1, active=True)
    star = AdapterFactory(name="Celestial", sdnext_name="celestial_anime_v2", weight=0.75, ordinal=2, active=True)
    body = {
        "compose_request": {"prefix": "masterpiece", "weight_overrides": {str(star.pk): 0.5}},
        "generation_params": {"prompt": "ignored", "steps": 12},
    }

    response = post(api, COMPOSE + DEFERRED, body)

    assert response.status_code == 200
    prompt = "masterpiece <lora:ink-sketch:1> <lora:celestial_anime_v2:0.5>"
    payload = response.json()
    assert payload["status"] == "queued"
    assert payload["composition"] == {
        "prompt": prompt,
        "tokens": ["<lora:ink-sketch:1>", "<lora:celestial_anime_v2:0.5>"],
        "triggers": [],
        "warnings": [],
    }
    job = only_job()
    assert (job.prompt, job.created_via) == (prompt, "generate")
    assert job.params["generation_params"]["prompt"] == prompt
    assert job.params["generation_params"]["steps"] == 12
    links = list(job.adapter_links.values_list("adapter_id", "weight", "position"))
    assert links == [(ink.pk, 1.0, 0), (star.pk, 0.5, 1)]


@pytest.mark.django_db
def test_compose_and_generate_with_an_empty_body_composes_every_active_adapter(api, backend):
    AdapterFactory(sdnext_name="ink", active=True)

    response = post(api, COMPOSE + DEFERRED, {})

    assert response.status_code == 200
    assert only_job().prompt == "<lora:ink:1>"


@pytest.mark.django_db
@pytest.mark.parametrize("compose_request", [{}, {"prefix": "hello"}, {"adapter_ids": [str(uuid.uuid4())]}])
def test_composition_without_tokens_is_400(api, backend, compose_request):
    response = post(api, COMPOSE, {"compose_request": compose_request})

    assert field_error(response, "non_field_errors") == "No active adapters found"
    assert not DeliveryJob.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        (
            {"compose_request": {"delivery": {"mode": "cli"}}},
            "compose_request.delivery",
            "delivery is not allowed here",
        ),
        ({"compose_request": {"nope": 1}}, "compose_request.nope", "Unknown field."),
        ({"compose_request": "x"}, "compose_request", "Must be a JSON object."),
        ({"generation_params": {"width": 100}}, "generation_params.width", "width must be a multiple of 8"),
        ({"generation_params": []}, "generation_params", "Must be a JSON object."),
        ({"prompt": "x"}, "prompt", "Unknown field."),
    ],
)
def test_compose_and_generate_validates_its_body(api, backend, body, key, message):
    AdapterFactory(active=True)

    assert field_error(post(api, COMPOSE, body), key) == message


@pytest.mark.django_db
def test_compose_request_may_carry_a_null_delivery(api, backend):
    AdapterFactory(active=True)

    assert post(api, COMPOSE + DEFERRED, {"compose_request": {"delivery": None}}).status_code == 200


# --- methods and authorisation ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", [GENERATE, COMPOSE, QUEUE])
def test_get_is_405_with_allow(api, url):
    response = api.get(url)

    assert problem(response, 405)["detail"] == "Method GET not allowed"
    assert "POST" in response["Allow"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", [GENERATE, COMPOSE, QUEUE])
def test_anonymous_is_401_and_read_only_key_is_403(anon, read_only_key, backend, url):
    assert problem(post(anon, url, {"prompt": "a cat"}), 401)["detail"] == "Authentication required"
    reader = APIClient()
    reader.credentials(HTTP_X_API_KEY=read_only_key)
    assert problem(post(reader, url, {"prompt": "a cat"}), 403)["detail"] == "This API key is read-only"
    assert not DeliveryJob.objects.exists()


@pytest.mark.django_db
def test_session_post_needs_a_csrf_token(django_user_model, backend):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_user("curator", password="pw", is_staff=True))

    response = post(client, GENERATE, {"prompt": "a cat"})

    assert problem(response, 403)["detail"] == "CSRF token missing or incorrect"


# --- return formats of a finished job (SPEC 5.1, 5.5.2) ------------------------------------------------------


@pytest.fixture
def finished(media_root):
    job = GenerationJobFactory()
    rows = [GenerationResultFactory(job=job, index=index) for index in range(2)]
    job.result = {**job.result, "images": [f"/media/{row.file}" for row in rows]}
    job.save()
    return job, rows


@pytest.mark.django_db
def test_url_format_lists_the_stored_media_urls(finished):
    job, rows = finished

    assert job_services.generation_result_payload(job)["images"] == [f"/media/{row.file}" for row in rows]


@pytest.mark.django_db
def test_file_path_format_lists_paths_relative_to_the_media_root(finished):
    job, rows = finished

    payload = job_services.generation_result_payload(job, return_format="file_path")

    assert payload["images"] == [row.file for row in rows]


@pytest.mark.django_db
def test_base64_format_encodes_the_stored_files(finished, media_root):
    job, rows = finished

    payload = job_services.generation_result_payload(job, return_format="base64")

    assert [base64.b64decode(image) for image in payload["images"]] == [
        (media_root / row.file).read_bytes() for row in rows
    ]
    assert payload["warnings"] == []


@pytest.mark.django_db
def test_base64_over_64_mib_returns_urls_with_a_warning(finished, media_root):
    job, rows = finished
    with (media_root / rows[1].file).open("r+b") as handle:  # sparse: nothing is really written
        handle.truncate(64 * 1024 * 1024)

    payload = job_services.generation_result_payload(job, return_format="base64")

    assert payload["images"] == [f"/media/{row.file}" for row in rows]
    assert payload["warnings"] == ["Images too large for base64; returned URLs"]


# --- with a real commit: queue failures and events (SPEC 6.2.2) -------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_queue_unavailable_is_503_with_the_job_id_and_fails_the_job(api, backend, monkeypatch):
    def refuse(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr("loraforge.celery.app.send_task", refuse)

    body = problem(post(api, QUEUE, {"prompt": "a cat"}), 503)

    job = only_job()
    assert (body["detail"], body["job_id"]) == ("Task queue unavailable", str(job.pk))
    assert (job.status, job.error_code) == ("failed", "queue_unavailable")


@pytest.mark.django_db(transaction=True)
def test_queue_generation_enqueues_and_publishes_generation_started_after_commit(api, backend, sent):
    recorder = EventRecorder()
    try:
        response = post(api, QUEUE, {"prompt": "a cat", "steps": 8})
        events = recorder.events()
    finally:
        recorder.close()

    job_id = response.json()["job_id"]
    assert sent == [job_id]
    started = [event["data"] for event in events if event["type"] == "generation_started"]
    assert [data["job_id"] for data in started] == [job_id]
    assert started[0]["params"]["steps"] == 8
    assert DeliveryJob.objects.get(pk=job_id).celery_task_id == "task-1"


@pytest.mark.django_db(transaction=True)
def test_generation_started_is_published_before_the_task_is_sent(api, backend, monkeypatch):
    """A worker in another process may publish its first progress_update as soon as it has the task."""
    from deliveries import services

    recorder = EventRecorder()
    seen_at_send: list[list[str]] = []
    enqueue = services.delivery_job_enqueue

    def recording_enqueue(job, **kwargs):
        seen_at_send.append([event["type"] for event in recorder.events()])
        return enqueue(job, **kwargs)

    monkeypatch.setattr(services, "delivery_job_enqueue", recording_enqueue)
    monkeypatch.setattr("loraforge.celery.app.send_task", lambda *args, **kwargs: type("R", (), {"id": "t-1"})())
    try:
        assert post(api, QUEUE, {"prompt": "a cat"}).status_code == 202
    finally:
        recorder.close()
    assert len(seen_at_send) == 1
    assert "generation_started" in seen_at_send[0]


# --- end to end: a worker thread and the fake SDNext ------------------------------------------------------


@pytest.fixture
def worker(monkeypatch):
    """The task queue replaced by a worker thread per job (``delivery_run``, as ``deliveries.run_delivery`` does)."""
    threads = []

    def run(job_id):
        try:
            delivery_run(job_id=job_id, worker="tests@worker")
        finally:
            connection.close()

    def send_task(name, args=None, **options):
        thread = threading.Thread(target=run, args=(args[0],), daemon=True)
        threads.append(thread)
        thread.start()
        return SimpleNamespace(id=f"task-{len(threads)}")

    monkeypatch.setattr("loraforge.celery.app.send_task", send_task)
    yield threads
    for thread in threads:
        thread.join(timeout=30)


@pytest.fixture
def sdnext_backend(fake_sdnext, sdnext_settings):
    return GenerationBackendFactory(name="main", url=fake_sdnext.url)


def small(prompt: str = "a lighthouse at dusk", **params) -> dict:
    return {"prompt": prompt, "steps": 4, "width": 64, "height": 64, "seed": 1234, **params}


@pytest.mark.django_db(transaction=True)
def test_immediate_generate_waits_for_the_images(api, sdnext_backend, worker):
    response = post(api, GENERATE, small(batch_size=2))

    assert response.status_code == 200
    body = response.json()
    job = DeliveryJob.objects.get(pk=body["job_id"])
    rows = list(GenerationResult.objects.filter(job=job).order_by("index"))
    assert (body["status"], body["progress"], body["progress_percent"], body["backend"]) == (
        "completed",
        1.0,
        100,
        "main",
    )
    assert body["images"] == [f"/media/{row.file}" for row in rows]
    assert len(rows) == 2
    assert (body["error_message"], body["error_code"]) == (None, None)
    assert body["generation_info"]["seed"] == 1234
    assert (job.status, job.created_via) == ("succeeded", "generate")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("return_format", ["file_path", "base64"])
def test_immediate_generate_in_other_return_formats(api, sdnext_backend, worker, return_format):
    body = post(api, f"{GENERATE}?return_format={return_format}", small()).json()

    [row] = GenerationResult.objects.filter(job_id=body["job_id"])
    stored = (Path(settings.MEDIA_ROOT) / row.file).read_bytes()
    [image] = body["images"]
    assert image == row.file if return_format == "file_path" else base64.b64decode(image) == stored
    assert body["status"] == "completed"
    assert DeliveryJob.objects.get(pk=body["job_id"]).result["images"] == [f"/media/{row.file}"]  # never base64


@pytest.mark.django_db(transaction=True)
def test_failed_generation_is_still_200(api, sdnext_backend, fake_sdnext, worker):
    fake_sdnext.set_fault("error_500")

    response = post(api, GENERATE, small())

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["images"], body["error_code"]) == ("failed", None, "backend_error")
    assert body["error_message"].startswith("SDNext error 500")


@pytest.mark.django_db(transaction=True)
def test_immediate_compose_and_generate(api, sdnext_backend, worker):
    AdapterFactory(name="Detail", sdnext_name="detail_tweaker", weight=0.5, active=True)

    body = post(api, COMPOSE, {"compose_request": {"prefix": "a fox"}, "generation_params": small()}).json()

    assert body["status"] == "completed"
    assert body["composition"]["prompt"] == "a fox <lora:detail_tweaker:0.5>"
    assert len(body["images"]) == 1


@pytest.mark.django_db(transaction=True)
def test_immediate_wait_ends_after_the_configured_seconds(api, backend, sent, settings):
    settings.LORAFORGE_IMMEDIATE_WAIT_SECONDS = 1

    response = post(api, GENERATE, {"prompt": "nobody runs this"})

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["images"]) == ("queued", None)


# --- under the ASGI application: a waiting generate blocks nobody ------------------------------------------


def _http_scope(method: str, path: str, key: str, body: bytes = b"") -> dict:
    headers = [(b"host", b"testserver"), (b"x-api-key", key.encode()), (b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"application/json"))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def _start(application, method: str, path: str, key: str, body: bytes = b"") -> ApplicationCommunicator:
    communicator = ApplicationCommunicator(application, _http_scope(method, path, key, body))
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    return communicator


async def _response(communicator: ApplicationCommunicator, timeout: float = 20) -> tuple[int, dict]:
    start = await communicator.receive_output(timeout)
    content = b""
    while True:
        message = await communicator.receive_output(timeout)
        content += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(timeout)  # the application closes the response (and its database connection)
    return start["status"], json.loads(content)


async def _eventually(condition, what: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while (value := await in_own_connection(condition)()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return value


def _first_job_id() -> str | None:
    job = DeliveryJob.objects.first()
    return None if job is None else str(job.pk)


@pytest.mark.django_db(transaction=True)
def test_other_requests_are_served_while_an_immediate_generate_waits(api_key, backend, sent, settings):
    """Nothing runs the job: the generate request waits until a second request cancels it, and that request
    (and a progress read before it) are answered meanwhile."""
    from loraforge.asgi import application

    settings.LORAFORGE_IMMEDIATE_WAIT_SECONDS = 60

    async def scenario() -> tuple[int, dict, int, dict]:
        generate = await _start(application, "POST", GENERATE, api_key, json.dumps({"prompt": "a cat"}).encode())
        job_id = await _eventually(_first_job_id, "the job row")
        progress = await _start(application, "GET", f"{URL}/progress/{job_id}", api_key)
        progress_status, progress_body = await _response(progress)
        assert await generate.receive_nothing(0.3)  # still waiting
        cancel = await _start(application, "POST", f"{URL}/jobs/{job_id}/cancel", api_key)
        cancel_status, _ = await _response(cancel)
        assert (progress_status, progress_body["status"], cancel_status) == (200, "queued", 200)
        generate_status, generate_body = await _response(generate)
        return progress_status, progress_body, generate_status, generate_body

    _, _, status, body = async_to_sync(scenario)()

    assert status == 200
    assert (body["status"], body["error_message"]) == ("cancelled", "Cancelled by user")
