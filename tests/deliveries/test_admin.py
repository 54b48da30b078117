"""The delivery jobs and generation results admin as a staff user sees it (SPEC 9.1)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deliveries.models import DeliveryJob
from generation.models import GenerationResult
from loraforge.models.jobs import JobStatus
from tests.deliveries.conftest import make_job
from tests.factories import AdapterFactory
from tests.generation.factories import GenerationBackendFactory

pytestmark = pytest.mark.django_db

JOBS = "/admin/deliveries/deliveryjob/"
RESULTS = "/admin/generation/generationresult/"
IMAGE = "/media/generations/2025/03/01/abc/000.png"


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_user("curator", is_staff=True, is_superuser=True)  # no password hashing
    client.force_login(user)
    return client


def listed(response) -> list:
    assert response.status_code == 200, response.content[:500]
    return list(response.context["cl"].result_list)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def generation_job(**fields) -> DeliveryJob:
    result = {"status": "completed", "images": [IMAGE], "warnings": []}
    return make_job(status=JobStatus.SUCCEEDED, mode="sdnext", result=result, backend_name="gpu-1", **fields)


def action(client, name: str, jobs: list[DeliveryJob]):
    data = {"action": name, "_selected_action": [str(job.pk) for job in jobs], "index": "0"}
    return client.post(JOBS, data, follow=True)


# --- delivery jobs: list ----------------------------------------------------------------------


def test_changelist_shows_the_documented_columns(staff):
    adapter = AdapterFactory(sdnext_name="ink")
    job = generation_job(links=[(adapter, 0.75)], prompt="a unique prompt")

    response = staff.get(JOBS)

    assert listed(response) == [job]
    content = response.content.decode()
    for text in (str(job.pk)[:8], "generation", "sdnext", "succeeded", "gpu-1", "2.0 s", "ink:0.75"):
        assert text in content, text
    assert response.context["cl"].list_display[-1] == "image_count"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status__exact": "failed"}, ["failed"]),
        ({"kind__exact": "generation"}, ["generation"]),
        ({"mode": "http"}, ["failed"]),
        ({"backend_name": "gpu-1"}, ["generation"]),
        ({"q": "PORTRAIT"}, ["generation"]),
    ],
)
def test_changelist_filters_and_search(staff, query, expected):
    jobs = {
        "cli": make_job(prompt="cli prompt", age=3),
        "failed": make_job(status=JobStatus.FAILED, mode="http", age=2),
        "generation": generation_job(prompt="a portrait", age=1),
    }

    assert listed(staff.get(JOBS, query)) == [jobs[name] for name in expected]


def test_changelist_filters_by_date(staff):
    old = make_job(created_at=timezone.now() - timedelta(days=30))
    new = make_job()
    since = (timezone.now() - timedelta(days=7)).isoformat()

    assert listed(staff.get(JOBS, {"created_at__gte": since})) == [new]
    assert old in listed(staff.get(JOBS))


@pytest.mark.parametrize("term", ["full", "prefix"])
def test_changelist_searches_ids(staff, term):
    job, _other = make_job(), make_job()
    text = str(job.pk) if term == "full" else str(job.pk)[:13]

    assert listed(staff.get(JOBS, {"q": text})) == [job]


def _changelist_queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(JOBS).status_code == 200
    return len(captured)


def test_changelist_query_count_does_not_grow_with_rows(staff, django_assert_max_num_queries):
    adapters = [AdapterFactory() for _ in range(3)]
    links = [(adapter, 1.0) for adapter in adapters]
    for index in range(3):
        generation_job(age=index, links=links)
    few = _changelist_queries(staff)
    for index in range(60):
        generation_job(age=10 + index, links=links)

    with django_assert_max_num_queries(few):
        staff.get(JOBS)
    assert few <= 12


# --- delivery jobs: detail ------------------------------------------------------------------


def test_detail_is_read_only_with_params_result_adapters_and_thumbnails(staff):
    adapter = AdapterFactory(name="Ink Sketch", sdnext_name="ink")
    job = generation_job(params={"generation_params": {"steps": 20}, "backend": "sdnext"}, links=[(adapter, 0.5)])

    response = staff.get(f"{JOBS}{job.pk}/change/")

    assert response.status_code == 200
    content = response.content.decode()
    assert "<pre" in content
    assert "&quot;steps&quot;: 20" in content
    assert "&quot;images&quot;" in content
    assert f"/admin/adapters/adapter/{adapter.pk}/change/" in content
    assert "Ink Sketch" in content
    assert f'<img src="{IMAGE}"' in content
    assert 'name="_save"' not in content


def test_jobs_cannot_be_added_edited_or_deleted(staff):
    job = make_job()

    assert staff.get(f"{JOBS}add/").status_code == 403
    assert staff.get(f"{JOBS}{job.pk}/delete/").status_code == 403
    staff.post(f"{JOBS}{job.pk}/change/", {"prompt": "changed"})
    job.refresh_from_db()
    assert job.prompt == "a prompt"


# --- delivery jobs: actions -----------------------------------------------------------------


def test_cancel_action_cancels_active_jobs_and_reports_finished_ones(staff):
    waiting, running, done = make_job(), make_job(status=JobStatus.RUNNING), make_job(status=JobStatus.SUCCEEDED)

    response = action(staff, "cancel_selected", [waiting, running, done])

    statuses = {job.pk: DeliveryJob.objects.get(pk=job.pk).status for job in (waiting, running, done)}
    assert statuses == {waiting.pk: "cancelled", running.pk: "cancelled", done.pk: "succeeded"}
    texts = messages_of(response)
    assert "Cancelled 2 job(s)." in texts
    assert any("Job cannot be cancelled in its current state (succeeded)" in text for text in texts)


def test_rerun_action_creates_a_new_job_with_the_same_prompt_params_and_adapters(
    staff, broker, django_capture_on_commit_callbacks
):
    ink, glow = AdapterFactory(sdnext_name="ink"), AdapterFactory(sdnext_name="glow")
    params = {"host": "hooks.local", "port": 80, "path": "/", "scheme": "http", "headers": {}, "timeout_seconds": 5}
    original = make_job(status=JobStatus.FAILED, mode="http", params=params, links=[(ink, 0.5), (glow, 1.25)])

    with django_capture_on_commit_callbacks(execute=True):
        response = action(staff, "rerun_selected", [original])

    rerun = DeliveryJob.objects.exclude(pk=original.pk).get()
    assert (rerun.status, rerun.created_via, rerun.mode, rerun.kind) == ("pending", "admin", "http", "delivery")
    assert (rerun.prompt, rerun.params) == (original.prompt, params)
    links = [(link.adapter_id, link.weight, link.position) for link in rerun.adapter_links.all()]
    assert links == [(ink.pk, 0.5, 0), (glow.pk, 1.25, 1)]
    assert broker.job_ids == [str(rerun.pk)]
    assert f"Queued 1 new job(s): {str(rerun.pk)[:8]}." in messages_of(response)
    original.refresh_from_db()
    assert original.status == "failed"


def test_rerun_keeps_the_pinned_backend_of_a_generation(staff, broker):
    GenerationBackendFactory(name="gpu-1")
    original = generation_job(requested_backend="gpu-1", params={"generation_params": {}, "backend": "gpu-1"})

    action(staff, "rerun_selected", [original])

    rerun = DeliveryJob.objects.exclude(pk=original.pk).get()
    assert (rerun.kind, rerun.requested_backend, rerun.params) == ("generation", "gpu-1", original.params)


def test_rerun_of_a_generation_pinned_to_a_disabled_backend_is_refused(staff, broker):
    GenerationBackendFactory(name="gpu-1", enabled=False)
    original = generation_job(requested_backend="gpu-1", params={"generation_params": {}, "backend": "gpu-1"})

    response = action(staff, "rerun_selected", [original])

    assert DeliveryJob.objects.count() == 1
    assert broker.sent == []
    assert any("Generation backend 'gpu-1' is disabled" in text for text in messages_of(response))


@pytest.mark.django_db(transaction=True)
def test_rerun_reports_an_unavailable_queue(staff, broker):
    broker.down = True
    original = make_job(status=JobStatus.FAILED)

    response = action(staff, "rerun_selected", [original])

    rerun = DeliveryJob.objects.exclude(pk=original.pk).get()
    assert (rerun.status, rerun.error_code) == ("failed", "queue_unavailable")
    assert any("Task queue unavailable" in text for text in messages_of(response))


# --- generation results ---------------------------------------------------------------------


def make_result(job: DeliveryJob | None = None, index: int = 0, **fields) -> GenerationResult:
    return GenerationResult.objects.create(
        job=job or generation_job(),
        index=index,
        file=f"generations/2025/03/01/x/{index:03d}.png",
        content_type="image/png",
        size_bytes=100,
        width=512,
        height=768,
        **fields,
    )


def edit_in_list(client, result: GenerationResult, **values):
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-id": str(result.pk),
        "form-0-rating": values.get("rating", "" if result.rating is None else result.rating),
        "_save": "Save",
    }
    if values.get("is_favorite", result.is_favorite):
        data["form-0-is_favorite"] = "on"
    return client.post(RESULTS, data)


def test_results_changelist_shows_thumbnail_job_and_editable_marks(staff):
    result = make_result()

    response = staff.get(RESULTS)

    assert listed(response) == [result]
    content = response.content.decode()
    assert '<img src="/media/generations/2025/03/01/x/000.png"' in content
    assert f"/admin/deliveries/deliveryjob/{result.job_id}/change/" in content
    assert 'name="form-0-rating"' in content
    assert 'name="form-0-is_favorite"' in content
    assert "512 x 768" in content


def test_rating_is_edited_in_the_list_with_its_timestamp(staff):
    result = make_result()

    response = edit_in_list(staff, result, rating="4")

    assert response.status_code == 302
    result.refresh_from_db()
    assert result.rating == 4
    assert result.rating_updated_at is not None
    assert result.favorite_updated_at is None


def test_clearing_the_rating_clears_its_timestamp(staff):
    result = make_result(rating=3, rating_updated_at=timezone.now())

    edit_in_list(staff, result, rating="")

    result.refresh_from_db()
    assert (result.rating, result.rating_updated_at) == (None, None)


@pytest.mark.parametrize("rating", ["6", "-1", "abc"])
def test_rating_outside_0_to_5_is_refused(staff, rating):
    result = make_result()

    response = edit_in_list(staff, result, rating=rating)

    assert response.status_code == 200
    assert "rating must be an integer between 0 and 5" in response.content.decode()
    result.refresh_from_db()
    assert result.rating is None


def test_favourite_is_edited_in_the_list_with_its_timestamp(staff):
    result = make_result()

    edit_in_list(staff, result, is_favorite=True)
    result.refresh_from_db()
    assert result.is_favorite is True
    assert result.favorite_updated_at is not None

    edit_in_list(staff, result, is_favorite=False)
    result.refresh_from_db()
    assert (result.is_favorite, result.favorite_updated_at) == (False, None)


def test_change_form_edits_rating_and_favourite_only(staff):
    result = make_result()

    response = staff.post(f"{RESULTS}{result.pk}/change/", {"rating": "5", "is_favorite": "on", "width": "1"})

    assert response.status_code == 302
    result.refresh_from_db()
    assert (result.rating, result.is_favorite, result.width) == (5, True, 512)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"is_favorite__exact": "1"}, ["favourite"]),
        ({"rating": "2"}, ["rated"]),
        ({"rating__isnull": "True"}, ["favourite", "plain"]),
    ],
)
def test_results_filters(staff, query, expected):
    job = generation_job()
    results = {
        "favourite": make_result(job, 0, is_favorite=True),
        "rated": make_result(job, 1, rating=2),
    }
    results["plain"] = make_result(job, 2)

    assert set(listed(staff.get(RESULTS, query))) == {results[name] for name in expected}


def test_results_filter_by_date(staff):
    old = make_result(created_at=timezone.now() - timedelta(days=40))
    new = make_result(index=1)
    since = (timezone.now() - timedelta(days=7)).isoformat()

    assert listed(staff.get(RESULTS, {"created_at__gte": since})) == [new]
    assert old in listed(staff.get(RESULTS))


def test_results_changelist_query_count_does_not_grow_with_rows(staff, django_assert_max_num_queries):
    job = generation_job()
    for index in range(3):
        make_result(job, index)
    with CaptureQueriesContext(connection) as captured:
        staff.get(RESULTS)
    few = len(captured)
    for index in range(3, 80):
        make_result(job, index)

    with django_assert_max_num_queries(few):
        staff.get(RESULTS)


def test_results_are_deleted_through_the_admin_action(staff):
    kept, gone = make_result(index=0), make_result(index=1)

    response = staff.post(
        RESULTS, {"action": "delete_selected", "_selected_action": [str(gone.pk)], "post": "yes"}, follow=True
    )

    assert response.status_code == 200
    assert list(GenerationResult.objects.all()) == [kept]


def test_result_change_form_delete(staff):
    result = make_result()

    response = staff.post(f"{RESULTS}{result.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not GenerationResult.objects.exists()
