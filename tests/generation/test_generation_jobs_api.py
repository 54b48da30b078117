"""``/generation/jobs/*`` and ``/generation/progress/{id}`` as a client sees them (SPEC 5.5.3, 6.2.4, 7).

Both read the job row only: no SDNext server exists in these tests.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from deliveries.models import DeliveryJobAdapter
from tests.factories import AdapterFactory
from tests.generation.factories import GenerationJobFactory, GenerationResultFactory, generation_params
from tests.generation.test_results_api import problem

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

URL = "/api/v1/generation"
SDNEXT_RESULT_KEYS = {
    "job_id", "status", "images", "progress", "progress_percent", "current_step", "total_steps", "eta_seconds",
    "error_message", "error_code", "generation_info", "warnings", "backend",
}  # fmt: skip
ACTIVE_KEYS = {
    "id", "jobId", "prompt", "status", "progress", "progress_percent", "current_step", "total_steps", "eta_seconds",
    "message", "error", "params", "backend", "created_at", "startTime", "finished_at", "result",
}  # fmt: skip


def running_job(**fields):
    defaults = {
        "status": "running",
        "progress": 0.45,
        "current_step": 9,
        "total_steps": 20,
        "eta_seconds": 3.1,
        "started_at": timezone.now(),
        "backend_name": "default",
    }
    return GenerationJobFactory(**(defaults | fields))


@pytest.fixture
def no_broker(monkeypatch):
    """Celery is never reached: revocation of a pending job's task is best effort anyway."""
    revoked = []
    monkeypatch.setattr("loraforge.celery.app.control.revoke", lambda task_id, **kwargs: revoked.append(task_id))
    return revoked


# --- progress ---------------------------------------------------------------------------------------------


def test_progress_of_a_running_job(api):
    job = running_job()

    response = api.get(f"{URL}/progress/{job.pk}?backend=ignored")

    assert response.status_code == 200
    assert response.json() == {
        "job_id": str(job.pk),
        "status": "processing",
        "images": None,
        "progress": 0.45,
        "progress_percent": 45,
        "current_step": 9,
        "total_steps": 20,
        "eta_seconds": 3.1,
        "error_message": None,
        "error_code": None,
        "generation_info": None,
        "warnings": [],
        "backend": "default",
    }


def test_progress_of_a_completed_job_lists_its_images(api):
    images = ["/media/generations/2025/03/01/x/000.jpg"]
    job = GenerationJobFactory(
        current_step=20,
        total_steps=20,
        result={"status": "completed", "images": images, "generation_info": {"seed": 1}, "warnings": ["w"]},
    )

    body = api.get(f"{URL}/progress/{job.pk}").json()

    assert set(body) == SDNEXT_RESULT_KEYS
    assert (body["status"], body["images"], body["progress"], body["progress_percent"]) == (
        "completed",
        images,
        1.0,
        100,
    )
    assert (body["generation_info"], body["warnings"]) == ({"seed": 1}, ["w"])


@pytest.mark.parametrize(
    ("status", "normalised"),
    [("pending", "queued"), ("running", "processing"), ("failed", "failed"), ("cancelled", "cancelled")],
)
def test_progress_reports_the_normalised_status_and_no_images_until_success(api, status, normalised):
    job = GenerationJobFactory(status=status, error="boom" if status == "failed" else None)

    body = api.get(f"{URL}/progress/{job.pk}").json()

    assert (body["status"], body["images"]) == (normalised, None)


def test_failed_job_carries_its_error(api):
    job = GenerationJobFactory(
        status="failed", error="SDNext error 500: CUDA out of memory", error_code="backend_error"
    )

    body = api.get(f"{URL}/progress/{job.pk}").json()

    assert (body["error_message"], body["error_code"]) == ("SDNext error 500: CUDA out of memory", "backend_error")


@pytest.mark.parametrize("path", ["progress/{id}", "jobs/{id}", "jobs/{id}/cancel"])
@pytest.mark.parametrize("job_id", ["not-a-uuid", "123", str(uuid.uuid4())])
def test_unknown_or_invalid_job_id_is_job_not_found(api, path, job_id):
    url = f"{URL}/{path.replace('{id}', job_id)}"
    response = api.post(url) if path.endswith("cancel") else api.get(url)

    assert problem(response, 404)["detail"] == "Job not found"


@pytest.mark.parametrize("path", ["progress/{id}", "jobs/{id}", "jobs/{id}/cancel"])
def test_a_delivery_job_is_not_a_generation_job(api, path):
    delivery = GenerationJobFactory(kind="delivery", mode="http", status="pending")
    url = f"{URL}/{path.replace('{id}', str(delivery.pk))}"
    response = api.post(url) if path.endswith("cancel") else api.get(url)

    assert problem(response, 404)["detail"] == "Job not found"


def test_progress_makes_no_backend_call_and_reads_one_row(api, django_assert_max_num_queries):
    job = running_job()
    api.get(f"{URL}/progress/{job.pk}")

    with django_assert_max_num_queries(2):  # the key and the job
        assert api.get(f"{URL}/progress/{job.pk}/").status_code == 200


# --- job detail -------------------------------------------------------------------------------------------


def test_job_detail_is_the_delivery_with_normalised_status_raw_status_and_results(api):
    adapter = AdapterFactory(name="Ink", sdnext_name="ink")
    job = GenerationJobFactory(prompt="cat <lora:ink:0.5>")
    DeliveryJobAdapter.objects.create(
        job=job, adapter=adapter, adapter_name="Ink", sdnext_name="ink", weight=0.5, position=0
    )
    second = GenerationResultFactory(job=job, index=1)
    first = GenerationResultFactory(job=job, index=0)

    response = api.get(f"{URL}/jobs/{job.pk}")

    assert response.status_code == 200
    delivery = response.json()["delivery"]
    assert (delivery["id"], delivery["kind"], delivery["status"], delivery["raw_status"]) == (
        str(job.pk),
        "generation",
        "completed",
        "succeeded",
    )
    assert delivery["params"]["generation_params"] == generation_params("cat <lora:ink:0.5>")
    assert delivery["adapters"] == [{"id": str(adapter.pk), "name": "Ink", "sdnext_name": "ink", "weight": 0.5}]
    assert [item["id"] for item in delivery["results"]] == [str(first.pk), str(second.pk)]
    assert delivery["results"][0]["adapters"] == delivery["adapters"]


def test_job_detail_query_count_is_bounded(api, django_assert_max_num_queries):
    job = GenerationJobFactory()
    for index in range(5):
        GenerationResultFactory(job=job, index=index, write_file=False)
    api.get(f"{URL}/jobs/{job.pk}")

    with django_assert_max_num_queries(4):  # key, job, links, results
        assert len(api.get(f"{URL}/jobs/{job.pk}").json()["delivery"]["results"]) == 5


# --- active jobs ------------------------------------------------------------------------------------------


def test_active_is_a_bare_list_with_compatibility_keys(api):
    started = timezone.now()
    job = running_job(prompt="portrait", started_at=started)

    response = api.get(f"{URL}/jobs/active")

    assert response.status_code == 200
    [item] = response.json()
    assert set(item) == ACTIVE_KEYS
    assert item | {"created_at": None, "startTime": None} == {
        "id": str(job.pk),
        "jobId": str(job.pk),
        "prompt": "portrait",
        "status": "processing",
        "progress": 0.45,
        "progress_percent": 45,
        "current_step": 9,
        "total_steps": 20,
        "eta_seconds": 3.1,
        "message": "",
        "error": None,
        "params": {**generation_params("portrait"), "backend": "sdnext"},
        "backend": "default",
        "created_at": None,
        "startTime": None,
        "finished_at": None,
        "result": None,
    }
    assert item["startTime"].endswith("Z")


def test_active_lists_only_queued_and_processing_generations_most_recent_first(api):
    now = timezone.now()
    old_running = running_job(created_at=now - timedelta(minutes=30), started_at=now - timedelta(minutes=5))
    new_pending = GenerationJobFactory(status="pending", created_at=now - timedelta(minutes=1))
    old_pending = GenerationJobFactory(status="pending", created_at=now - timedelta(minutes=10))
    GenerationJobFactory(status="succeeded")
    GenerationJobFactory(status="cancelled")
    GenerationJobFactory(kind="delivery", mode="http", status="pending")

    body = api.get(f"{URL}/jobs/active").json()

    assert [item["id"] for item in body] == [str(new_pending.pk), str(old_running.pk), str(old_pending.pk)]
    assert [item["status"] for item in body] == ["queued", "processing", "queued"]


def test_active_limit(api):
    for _ in range(3):
        GenerationJobFactory(status="pending")

    assert len(api.get(f"{URL}/jobs/active?limit=2").json()) == 2


@pytest.mark.parametrize("limit", ["0", "201", "abc", "-1"])
def test_invalid_active_limit_is_400(api, limit):
    body = problem(api.get(f"{URL}/jobs/active?limit={limit}"), 400)

    assert list(body["errors"]) == ["limit"]


def test_jobs_list_itself_is_not_a_route(api):
    assert problem(api.get(f"{URL}/jobs"), 404)["detail"] == "Not found"


# --- cancel -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "running"])
def test_cancel_of_an_active_job(api, no_broker, status):
    job = GenerationJobFactory(status=status, celery_task_id="task-1")

    response = api.post(f"{URL}/jobs/{job.pk}/cancel")

    assert response.status_code == 200
    assert response.json() == {"success": True, "status": "cancelled", "message": "Generation job cancelled"}
    job.refresh_from_db()
    assert (job.status, job.error, job.error_code) == ("cancelled", "Cancelled by user", "cancelled")
    assert api.get(f"{URL}/progress/{job.pk}").json()["status"] == "cancelled"


def test_cancel_is_idempotent(api):
    job = GenerationJobFactory(status="cancelled")

    response = api.post(f"{URL}/jobs/{job.pk}/cancel/")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


@pytest.mark.parametrize(("status", "label"), [("succeeded", "completed"), ("failed", "failed")])
def test_cancel_of_a_finished_job_is_409_naming_the_normalised_status(api, status, label):
    job = GenerationJobFactory(status=status)

    body = problem(api.post(f"{URL}/jobs/{job.pk}/cancel"), 409)

    assert body["type"] == "urn:loraforge:problem:conflict"
    assert body["detail"] == f"Job cannot be cancelled in its current state ({label})"
    job.refresh_from_db()
    assert job.status == status


# --- methods and authorisation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("post", "progress/{id}", {"GET"}),
        ("delete", "jobs/{id}", {"GET"}),
        ("get", "jobs/{id}/cancel", {"POST"}),
        ("post", "jobs/active", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_allow(api, method, path, allowed):
    job = GenerationJobFactory()

    response = getattr(api, method)(f"{URL}/{path.replace('{id}', str(job.pk))}")

    assert problem(response, 405)["type"] == "urn:loraforge:problem:method-not-allowed"
    assert allowed <= {name.strip() for name in response["Allow"].split(",")}


@pytest.mark.parametrize("path", ["progress/{id}", "jobs/{id}", "jobs/active"])
def test_anonymous_reads_are_401(anon, path):
    job = GenerationJobFactory()

    assert problem(anon.get(f"{URL}/{path.replace('{id}', str(job.pk))}"), 401)["detail"] == "Authentication required"


def test_read_only_key_reads_but_cannot_cancel(read_only_key):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=read_only_key)
    job = GenerationJobFactory(status="pending")

    assert client.get(f"{URL}/progress/{job.pk}").status_code == 200
    assert client.get(f"{URL}/jobs/{job.pk}").status_code == 200
    body = problem(
        client.post(f"{URL}/jobs/{job.pk}/cancel", data=json.dumps({}), content_type="application/json"), 403
    )
    assert body["detail"] == "This API key is read-only"
    job.refresh_from_db()
    assert job.status == "pending"
