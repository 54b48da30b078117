"""``/deliveries`` as a client sees it (SPEC 5.4, 5.1 Delivery, 6.2.4, 4.5, 7)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from deliveries.models import DeliveryJob
from loraforge.models.jobs import JobStatus
from loraforge.progress import iso_timestamp
from tests.deliveries.conftest import assert_invalid, assert_problem, make_job, post
from tests.factories import AdapterFactory
from tests.generation.factories import GenerationBackendFactory
from tests.progress_events import EventRecorder, job_events

pytestmark = pytest.mark.django_db
URL = "/api/v1/deliveries"
UNKNOWN_MODE = "Unknown delivery mode '{}'. Use http, cli, sdnext or a generation backend name."


def create(client, **body):
    return post(client, URL, {"prompt": "a cat", **body})


def created_job(response) -> DeliveryJob:
    assert response.status_code == 201, response.content
    body = response.json()
    job = DeliveryJob.objects.get(pk=body["delivery_id"])
    assert body == {"delivery_id": str(job.pk), "status": "pending"}
    assert job.created_via == "deliveries"
    return job


# --- POST /deliveries -----------------------------------------------------------------------


def test_cli_delivery_is_created(api):
    job = created_job(create(api, mode="cli", params={"template": "say {prompt}"}))

    assert (job.kind, job.mode, job.prompt, job.status) == ("delivery", "cli", "a cat", "pending")
    assert job.params == {"template": "say {prompt}"}


def test_params_default_to_an_empty_object(api):
    job = created_job(create(api, mode="cli"))

    assert job.params == {"template": None}


def test_http_delivery_params_are_validated_and_completed(api, allowed_hosts):
    job = created_job(create(api, mode="http", params={"host": "api.internal", "port": 8080, "path": "/hook"}))

    assert job.params == {
        "host": "api.internal",
        "port": 8080,
        "path": "/hook",
        "scheme": "http",
        "headers": {},
        "timeout_seconds": 30,
    }


def test_sdnext_delivery_puts_the_prompt_into_the_generation_params(api):
    GenerationBackendFactory()
    params = {"generation_params": {"prompt": "other", "width": 768}, "mode": "immediate"}

    job = created_job(create(api, mode="sdnext", params=params))

    assert (job.kind, job.requested_backend) == ("generation", "sdnext")
    assert job.params["generation_params"]["prompt"] == "a cat"
    assert job.params["generation_params"]["width"] == 768
    assert (job.params["mode"], job.params["backend"]) == ("immediate", "sdnext")


def test_sdnext_params_backend_pins_the_job(api):
    GenerationBackendFactory(name="gpu-1")

    job = created_job(create(api, mode="sdnext", params={"backend": "gpu-1"}))

    assert (job.requested_backend, job.params["backend"]) == ("gpu-1", "gpu-1")


def test_backend_name_as_mode_pins_the_job(api):
    GenerationBackendFactory(name="gpu-1")

    job = created_job(create(api, mode="gpu-1"))

    assert (job.kind, job.mode, job.requested_backend, job.params["backend"]) == (
        "generation",
        "sdnext",
        "gpu-1",
        "gpu-1",
    )


def test_backend_conflicting_with_the_mode_is_rejected(api):
    GenerationBackendFactory(name="gpu-1")
    GenerationBackendFactory(name="gpu-2")

    response = create(api, mode="gpu-1", params={"backend": "gpu-2"})

    assert_invalid(response, "params.backend", "backend 'gpu-2' conflicts with mode 'gpu-1'")


def test_unknown_params_backend_is_rejected(api):
    GenerationBackendFactory(name="gpu-1")

    assert_invalid(
        create(api, mode="sdnext", params={"backend": "gpu-9"}),
        "params.backend",
        "Unknown generation backend 'gpu-9'",
    )


def test_disabled_params_backend_is_rejected(api):
    GenerationBackendFactory(name="gpu-1")
    GenerationBackendFactory(name="gpu-off", enabled=False)

    assert_invalid(
        create(api, mode="sdnext", params={"backend": "gpu-off"}),
        "params.backend",
        "Generation backend 'gpu-off' is disabled",
    )


def test_generation_without_an_enabled_backend_is_503_and_creates_nothing(api):
    response = create(api, mode="sdnext")

    body = assert_problem(response, 503, "No enabled generation backend is configured")
    assert body["type"] == "urn:loraforge:problem:service-unavailable"
    assert not DeliveryJob.objects.exists()


def test_unknown_mode_is_rejected(api):
    assert_invalid(create(api, mode="email"), "mode", UNKNOWN_MODE.format("email"))


@pytest.mark.parametrize(
    ("params", "key", "message"),
    [
        ({}, "params.host", "This field is required."),
        ({"host": "evil.test"}, "params.host", "Host 'evil.test' is not in LORAFORGE_DELIVERY_ALLOWED_HOSTS"),
        ({"host": "hooks.local", "verb": "PUT"}, "params.verb", "Unknown field."),
        ({"host": "hooks.local", "path": "x"}, "params.path", "path must start with '/'"),
        ({"host": "hooks.local", "headers": {"Host": "x"}}, "params.headers.Host", "Header 'Host' may not be set"),
        (
            {"host": "hooks.local", "timeout_seconds": 0},
            "params.timeout_seconds",
            "Ensure this value is greater than or equal to 1.",
        ),
    ],
)
def test_http_params_errors_are_keyed_under_params(api, allowed_hosts, params, key, message):
    assert_invalid(create(api, mode="http", params=params), key, message)


def test_cli_params_errors_are_keyed_under_params(api):
    response = create(api, mode="cli", params={"template": "x"})

    assert_invalid(response, "params.template", "template must contain {prompt}")


def test_sdnext_params_errors_are_keyed_under_params(api):
    GenerationBackendFactory()
    response = create(api, mode="sdnext", params={"generation_params": {"width": 513}})

    assert_invalid(response, "params.generation_params.width", "width must be a multiple of 8")


def test_params_must_be_an_object(api):
    assert_invalid(create(api, mode="cli", params=["x"]), "params", "Must be a JSON object.")


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("", "prompt must not be empty"),
        ("  \n ", "prompt must not be empty"),
        (5, "Not a valid string."),
        (None, "This field may not be null."),
        ("x" * 20_001, "Ensure this field has no more than 20000 characters."),
    ],
)
def test_prompt_must_be_a_non_blank_string_within_the_limit(api, prompt, message):
    assert_invalid(post(api, URL, {"prompt": prompt, "mode": "cli"}), "prompt", message)


def test_prompt_and_mode_are_required(api):
    response = post(api, URL, {})

    assert response.status_code == 400
    assert response.json()["errors"] == {"prompt": ["This field is required."], "mode": ["This field is required."]}


def test_prompt_is_stored_as_given(api):
    job = created_job(post(api, URL, {"prompt": "  spaced \n prompt ", "mode": "cli"}))

    assert job.prompt == "  spaced \n prompt "


def test_unknown_body_key_is_rejected(api):
    assert_invalid(create(api, mode="cli", extra=1), "extra", "Unknown field.")


def test_created_job_is_enqueued_on_commit_and_announced(api, broker, django_capture_on_commit_callbacks):
    recorder = EventRecorder()
    with django_capture_on_commit_callbacks(execute=True):
        job = created_job(create(api, mode="cli"))

    assert broker.job_ids == [str(job.pk)]
    assert broker.sent[0].options["queue"] == "default"
    [event] = job_events(recorder.events())
    assert (event["job_id"], event["kind"], event["status"]) == (str(job.pk), "delivery", "pending")
    recorder.close()


@pytest.mark.django_db(transaction=True)
def test_queue_unavailable_is_503_with_the_failed_job_id(api, broker):
    broker.down = True

    body = assert_problem(create(api, mode="cli"), 503, "Task queue unavailable")

    job = DeliveryJob.objects.get(pk=body["job_id"])
    assert (job.status, job.error_code) == ("failed", "queue_unavailable")


def test_read_only_key_cannot_create(read_only_key):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_X_API_KEY=read_only_key)
    assert_problem(create(client, mode="cli"), 403, "This API key is read-only")


@pytest.mark.parametrize(("method", "path"), [("get", ""), ("post", ""), ("get", "/{id}"), ("post", "/{id}/cancel")])
def test_anonymous_requests_are_401(anon, method, path):
    url = URL + path.format(id=uuid.uuid4())
    assert_problem(getattr(anon, method)(url), 401, "Authentication required")


# --- GET /deliveries/{id} -------------------------------------------------------------------


def test_detail_is_the_delivery_object(api):
    adapter = AdapterFactory(name="Celestial Anime Portraits", sdnext_name="celestial_anime_v2")
    image = "/media/generations/2025/03/01/x/000.jpg"
    result = {"status": "completed", "images": [image], "generation_info": {"seed": 1}, "warnings": []}
    job = make_job(
        status=JobStatus.SUCCEEDED,
        mode="sdnext",
        prompt="portrait <lora:celestial_anime_v2:0.75>",
        params={"generation_params": {"steps": 20}, "backend": "sdnext"},
        result=result,
        backend_name="default",
        progress=1.0,
        current_step=20,
        total_steps=20,
        links=[(adapter, 0.75)],
    )

    response = api.get(f"{URL}/{job.pk}")

    assert response.status_code == 200
    job.refresh_from_db()
    assert response.json() == {
        "delivery": {
            "id": str(job.pk),
            "kind": "generation",
            "prompt": "portrait <lora:celestial_anime_v2:0.75>",
            "mode": "sdnext",
            "params": {"generation_params": {"steps": 20}, "backend": "sdnext"},
            "status": "succeeded",
            "progress": 1.0,
            "progress_percent": 100,
            "current_step": 20,
            "total_steps": 20,
            "eta_seconds": None,
            "message": "",
            "result": result,
            "error": None,
            "error_code": None,
            "backend": "default",
            "adapters": [
                {
                    "id": str(adapter.pk),
                    "name": "Celestial Anime Portraits",
                    "sdnext_name": "celestial_anime_v2",
                    "weight": 0.75,
                }
            ],
            "images": [image],
            "attempts": 1,
            "created_at": iso_timestamp(job.created_at),
            "started_at": iso_timestamp(job.started_at),
            "finished_at": iso_timestamp(job.finished_at),
            "updated_at": iso_timestamp(job.updated_at),
        }
    }


def test_detail_status_is_raw(api):
    job = make_job(status=JobStatus.RUNNING)

    assert api.get(f"{URL}/{job.pk}").json()["delivery"]["status"] == "running"


def test_detail_accepts_upper_case_ids_and_a_trailing_slash(api):
    job = make_job()

    assert api.get(f"{URL}/{str(job.pk).upper()}/").json()["delivery"]["id"] == str(job.pk)


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-uuid", "123"])
def test_unknown_delivery_is_404(api, job_id):
    body = assert_problem(api.get(f"{URL}/{job_id}"), 404, "Delivery not found")
    assert body["type"] == "urn:loraforge:problem:not-found"


# --- GET /deliveries ------------------------------------------------------------------------


def ids_of(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


def test_list_is_the_envelope_newest_first(api):
    old, new = make_job(age=60), make_job(age=1)

    response = api.get(URL)

    body = response.json()
    assert {key: body[key] for key in ("total", "filtered", "page", "pages", "per_page")} == {
        "total": 2,
        "filtered": 2,
        "page": 1,
        "pages": 1,
        "per_page": 50,
    }
    assert ids_of(response) == [str(new.pk), str(old.pk)]
    assert body["items"][0] == api.get(f"{URL}/{new.pk}").json()["delivery"]


def test_list_ties_are_broken_by_id(api):
    moment = datetime(2025, 3, 1, tzinfo=UTC)
    jobs = [make_job(created_at=moment) for _ in range(3)]

    assert ids_of(api.get(URL)) == sorted((str(job.pk) for job in jobs), reverse=True)


def test_list_paginates(api):
    jobs = [make_job(age=index) for index in range(5)]

    body = api.get(URL, {"per_page": 2, "page": 3}).json()

    assert [item["id"] for item in body["items"]] == [str(jobs[4].pk)]
    assert (body["total"], body["pages"], body["per_page"]) == (5, 3, 2)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "failed"}, ["failed_http"]),
        ({"kind": "generation"}, ["generation"]),
        ({"mode": "http"}, ["failed_http"]),
        ({"backend": "gpu-1"}, ["generation"]),
        ({"search": "PORTRAIT"}, ["generation"]),
        ({"search": "100%"}, ["cli"]),
        ({"search": "1_0"}, []),
        ({"status": "pending", "mode": "cli"}, ["cli"]),
    ],
)
def test_list_filters(api, query, expected):
    jobs = {
        "cli": make_job(prompt="100% done", age=3),
        "failed_http": make_job(status=JobStatus.FAILED, mode="http", age=2),
        "generation": make_job(mode="sdnext", prompt="a portrait", backend_name="gpu-1", age=1),
    }

    response = api.get(URL, query)

    assert ids_of(response) == [str(jobs[name].pk) for name in expected]
    assert response.json()["total"] == 3
    assert response.json()["filtered"] == len(expected)


def test_list_filters_by_adapter(api):
    adapter, other = AdapterFactory(), AdapterFactory()
    linked = make_job(links=[(adapter, 1.0), (adapter, 0.5)])
    make_job(links=[(other, 1.0)])
    make_job()

    response = api.get(URL, {"adapter_id": str(adapter.pk)})

    assert ids_of(response) == [str(linked.pk)]
    assert response.json()["filtered"] == 1


def test_list_filters_by_creation_date(api):
    day = datetime(2025, 3, 1, 12, tzinfo=UTC)
    before, during, after = (make_job(created_at=day + timedelta(days=offset)) for offset in (-1, 0, 1))

    assert ids_of(api.get(URL, {"created_after": "2025-03-01", "created_before": "2025-03-01"})) == [str(during.pk)]
    assert ids_of(api.get(URL, {"created_after": "2025-03-02T00:00:00Z"})) == [str(after.pk)]
    assert ids_of(api.get(URL, {"created_before": "2025-03-01T00:00:00+00:00"})) == [str(before.pk)]


@pytest.mark.parametrize(
    ("name", "value"),
    [("status", "done"), ("kind", "image"), ("mode", "later"), ("adapter_id", "x"), ("created_after", "yesterday")],
)
def test_invalid_filter_values_are_400_keyed_by_the_parameter(api, name, value):
    response = api.get(URL, {name: value})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [name]


def test_list_query_count_does_not_grow_with_rows(api, django_assert_max_num_queries):
    adapters = [AdapterFactory() for _ in range(3)]
    for index in range(40):
        make_job(age=index, links=[(adapter, 1.0) for adapter in adapters])
    api.get(URL)  # the key's last_used_at is written once

    with django_assert_max_num_queries(5):
        response = api.get(URL, {"adapter_id": str(adapters[0].pk)})

    assert len(response.json()["items"]) == 40
    assert all(len(item["adapters"]) == 3 for item in response.json()["items"])


# --- POST /deliveries/{id}/cancel -----------------------------------------------------------

CANCELLED = {"success": True, "status": "cancelled", "message": "Delivery job cancelled"}


def test_cancel_a_pending_delivery(api):
    job = make_job()
    recorder = EventRecorder()

    response = api.post(f"{URL}/{job.pk}/cancel")

    assert response.status_code == 200
    assert response.json() == CANCELLED
    job.refresh_from_db()
    assert (job.status, job.error, job.error_code, job.message) == (
        "cancelled",
        "Cancelled by user",
        "cancelled",
        "Cancelled by user",
    )
    assert job.finished_at is not None
    events = job_events(recorder.events())
    assert [(event["job_id"], event["kind"], event["status"]) for event in events] == [
        (str(job.pk), "delivery", "cancelled")
    ]


def test_cancel_a_running_delivery_records_the_request(api):
    job = make_job(status=JobStatus.RUNNING, started_at=datetime.now(UTC), attempts=1)

    assert api.post(f"{URL}/{job.pk}/cancel").json() == CANCELLED

    job.refresh_from_db()
    assert job.status == "cancelled"
    assert job.cancel_requested_at is not None


def test_cancel_revokes_the_queued_task(api, monkeypatch):
    revoked = []
    monkeypatch.setattr("loraforge.celery.app.control.revoke", lambda task_id, **kwargs: revoked.append(task_id))
    job = make_job(celery_task_id="task-1")

    api.post(f"{URL}/{job.pk}/cancel")

    assert revoked == ["task-1"]


def test_cancel_is_idempotent(api):
    job = make_job()
    api.post(f"{URL}/{job.pk}/cancel")
    recorder = EventRecorder()

    response = api.post(f"{URL}/{job.pk}/cancel")

    assert response.status_code == 200
    assert response.json() == CANCELLED
    assert job_events(recorder.events()) == []


@pytest.mark.parametrize("state", [JobStatus.SUCCEEDED, JobStatus.FAILED])
def test_finished_delivery_cannot_be_cancelled(api, state):
    job = make_job(status=state)

    body = assert_problem(
        api.post(f"{URL}/{job.pk}/cancel"), 409, f"Job cannot be cancelled in its current state ({state})"
    )

    assert body["type"] == "urn:loraforge:problem:conflict"
    job.refresh_from_db()
    assert job.status == state


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "nope"])
def test_cancel_of_an_unknown_delivery_is_404(api, job_id):
    assert_problem(api.post(f"{URL}/{job_id}/cancel"), 404, "Delivery not found")


def test_cancel_answers_405_to_get(api):
    job = make_job()

    response = api.get(f"{URL}/{job.pk}/cancel")

    assert response.status_code == 405
    assert "POST" in response["Allow"]
