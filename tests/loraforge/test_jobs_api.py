"""``/jobs`` as a client sees it (SPEC 5.11): envelope, filters, detail, cancel matrix, auth."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from loraforge.models import BackgroundJob
from tests.progress_events import EventRecorder, job_events

pytestmark = pytest.mark.django_db
URL = "/api/v1/jobs"
JOB_KEYS = {
    "id", "kind", "status", "progress", "progress_percent", "message", "params", "result", "error", "created_via",
    "created_at", "started_at", "finished_at",
}  # fmt: skip


def make_job(kind: str = "scan", status: str = "pending", minutes_ago: int = 0, **fields) -> BackgroundJob:
    created_at = timezone.now() - timedelta(minutes=minutes_ago)
    return BackgroundJob.objects.create(kind=kind, status=status, created_at=created_at, **fields)


@pytest.fixture
def recorder():
    recorder = EventRecorder()
    yield recorder
    recorder.close()


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


# --- list -----------------------------------------------------------------------------------------


def test_list_is_the_pagination_envelope_newest_first(api):
    old, middle, new = make_job(minutes_ago=30), make_job(minutes_ago=20), make_job(minutes_ago=10)
    body = api.get(URL).json()
    assert [item["id"] for item in body["items"]] == [str(new.pk), str(middle.pk), str(old.pk)]
    assert {key: body[key] for key in ("total", "filtered", "page", "pages", "per_page")} == {
        "total": 3,
        "filtered": 3,
        "page": 1,
        "pages": 1,
        "per_page": 50,
    }
    assert set(body["items"][0]) == JOB_KEYS


def test_list_pages_by_50_by_default(api):
    BackgroundJob.objects.bulk_create(BackgroundJob(kind="scan") for _ in range(51))
    body = api.get(URL).json()
    assert (len(body["items"]), body["pages"], body["per_page"]) == (50, 2, 50)
    assert len(api.get(f"{URL}?page=2").json()["items"]) == 1


def test_list_filters_by_kind_and_status(api):
    scan = make_job("scan", "running")
    make_job("scan", "succeeded")
    make_job("backup", "running")
    body = api.get(f"{URL}?kind=scan&status=running").json()
    assert [item["id"] for item in body["items"]] == [str(scan.pk)]
    assert (body["total"], body["filtered"]) == (3, 1)


@pytest.mark.parametrize(
    ("query", "key", "message"),
    [
        ("kind=delivery", "kind", "kind must be one of: scan, import, export, backup, restore, embeddings"),
        ("status=done", "status", "status must be one of: pending, running, succeeded, failed, cancelled"),
        ("page=abc", "page", "A valid integer is required."),
    ],
)
def test_list_rejects_bad_query_values(api, query, key, message):
    body = problem(api.get(f"{URL}?{query}"), 400)
    assert body["errors"] == {key: [message]}


def test_list_costs_a_fixed_number_of_queries(api, django_assert_max_num_queries):
    BackgroundJob.objects.bulk_create(BackgroundJob(kind="scan") for _ in range(30))
    with django_assert_max_num_queries(4):  # key lookup, count, page (no total query without filters)
        assert api.get(URL).status_code == 200


# --- detail ---------------------------------------------------------------------------------------


def test_detail_wraps_the_job(api):
    now = timezone.now()
    job = make_job(
        status="succeeded",
        progress=1.0,
        message="done",
        params={"paths": None, "dry_run": False},
        result={"created": 1},
        started_at=now,
        finished_at=now,
        created_via="cli",
    )
    body = api.get(f"{URL}/{job.pk}").json()
    iso = now.isoformat().replace("+00:00", "Z")
    assert body == {
        "job": {
            "id": str(job.pk),
            "kind": "scan",
            "status": "succeeded",
            "progress": 1.0,
            "progress_percent": 100,
            "message": "done",
            "params": {"paths": None, "dry_run": False},
            "result": {"created": 1},
            "error": None,
            "created_via": "cli",
            "created_at": job.created_at.isoformat().replace("+00:00", "Z"),
            "started_at": iso,
            "finished_at": iso,
        }
    }


def test_detail_rounds_progress_percent(api):
    job = make_job(status="running", progress=0.456)
    assert api.get(f"{URL}/{job.pk}").json()["job"]["progress_percent"] == 46


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-uuid", "123"])
def test_unknown_job_is_404(api, job_id):
    for response in (api.get(f"{URL}/{job_id}"), api.post(f"{URL}/{job_id}/cancel")):
        assert problem(response, 404)["detail"] == "Job not found"


def test_detail_answers_with_and_without_trailing_slash(api):
    job = make_job()
    assert api.get(f"{URL}/{job.pk}/").json() == api.get(f"{URL}/{job.pk}").json()


# --- cancel ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "status"), [("scan", "pending"), ("scan", "running"), ("import", "pending")])
def test_cancel_of_an_active_job(api, recorder, kind, status):
    job = make_job(kind, status)
    response = api.post(f"{URL}/{job.pk}/cancel")
    assert response.status_code == 200
    assert response.json() == {"success": True, "status": "cancelled", "message": "Job cancelled"}
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert job.finished_at is not None
    assert job.cancel_requested_at is not None
    assert [event["status"] for event in job_events(recorder.events())] == ["cancelled"]


def test_cancel_of_a_cancelled_job_is_idempotent(api, recorder):
    job = make_job(status="cancelled")
    response = api.post(f"{URL}/{job.pk}/cancel")
    assert response.status_code == 200
    assert response.json() == {"success": True, "status": "cancelled", "message": "Job cancelled"}
    assert recorder.events() == []


@pytest.mark.parametrize("status", ["succeeded", "failed"])
def test_cancel_of_a_finished_job_is_409(api, status):
    job = make_job(status=status)
    body = problem(api.post(f"{URL}/{job.pk}/cancel"), 409)
    assert body["type"] == "urn:loraforge:problem:conflict"
    assert body["detail"] == f"Job cannot be cancelled in its current state ({status})"
    job.refresh_from_db()
    assert job.status == status


@pytest.mark.parametrize("kind", ["import", "restore"])
def test_cancel_of_a_running_import_or_restore_is_409(api, kind):
    job = make_job(kind, "running")
    body = problem(api.post(f"{URL}/{job.pk}/cancel"), 409)
    assert body["detail"] == "Job cannot be cancelled in its current state (running)"


# --- auth -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "suffix"), [("get", ""), ("get", "/{id}"), ("post", "/{id}/cancel")])
def test_job_routes_require_authentication(method, suffix):
    job = make_job()
    response = getattr(APIClient(), method)(URL + suffix.format(id=job.pk))
    assert problem(response, 401)["detail"] == "Authentication required"


def test_read_only_key_may_read_jobs_but_not_cancel(read_only_key):
    job = make_job()
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=read_only_key)
    assert client.get(URL).status_code == 200
    assert client.get(f"{URL}/{job.pk}").status_code == 200
    assert problem(client.post(f"{URL}/{job.pk}/cancel"), 403)["detail"] == "This API key is read-only"
    job.refresh_from_db()
    assert job.status == "pending"
