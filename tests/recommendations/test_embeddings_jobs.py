"""Embeddings jobs (SPEC 5.6, 5.11): the endpoints that queue them, the task that runs them, cooperative cancel,
the time limit, and a job without semantic embeddings."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from loraforge.jobs.deadline import TIME_LIMIT_EXCEEDED
from loraforge.jobs.recovery import WORKER_LOST
from loraforge.models import BackgroundJob
from recommendations.encoder import Encoder
from recommendations.models import AdapterEmbedding
from recommendations.services.embeddings import embeddings_job_start
from recommendations.tasks import compute_embeddings
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/recommendations/embeddings"
TASK = "recommendations.compute_embeddings"
RESULT_KEYS = {
    "processed_count", "skipped_count", "error_count", "processing_time_seconds", "errors", "completed_at",
    "semantic_available",
}  # fmt: skip


def post(api, url, body=None):
    return api.post(url, data=json.dumps(body or {}), content_type="application/json")


@pytest.fixture
def adapters():
    return [
        AdapterFactory(name="Starry Eyes", description="Sparkling anime eyes"),
        AdapterFactory(name="Ink Wash", description="Traditional ink painting"),
        AdapterFactory(name="Neon City", description="Cyberpunk streets at night"),
    ]


def start_job(**options) -> BackgroundJob:
    job, _count = embeddings_job_start(**options)
    return job


def test_compute_queues_a_job_and_sends_its_task_on_commit(
    api, adapters, sent_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, f"{URL}/compute", {"batch_size": 2})
    assert response.status_code == 202
    body = response.json()
    job = BackgroundJob.objects.get()
    assert body == {"job_id": str(job.pk), "kind": "embeddings", "status": "pending", "queued_count": 3}
    assert sent_tasks == [(TASK, [str(job.pk)], {})]
    assert (job.kind, job.status, job.created_via, job.celery_task_id) == ("embeddings", "pending", "api", "task-1")
    assert job.params == {"adapter_ids": None, "force_recompute": False, "compute_all": False, "batch_size": 2}


def test_queued_count_is_what_the_job_will_consider(api, adapters, sent_tasks):
    compute_embeddings(str(start_job(adapter_ids=[str(adapters[0].pk)]).pk))
    assert post(api, f"{URL}/compute").json()["queued_count"] == 2  # the ones still without a vector
    assert post(api, f"{URL}/compute", {"compute_all": True}).json()["queued_count"] == 3
    assert post(api, f"{URL}/compute", {"force_recompute": True}).json()["queued_count"] == 3
    body = post(api, f"{URL}/compute", {"adapter_ids": [str(adapters[1].pk), str(adapters[1].pk)]}).json()
    assert body["queued_count"] == 1


def test_unknown_adapter_ids_are_rejected(api, adapters, sent_tasks):
    missing = str(uuid.uuid4())
    response = post(api, f"{URL}/compute", {"adapter_ids": [str(adapters[0].pk), missing]})
    assert response.status_code == 400
    assert response.json()["errors"]["adapter_ids"] == [f"Unknown adapter ids: {missing}"]
    assert not BackgroundJob.objects.exists()


def test_compute_one_queues_a_job_for_that_adapter(api, adapters, sent_tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"{URL}/{adapters[1].pk}/compute?force_recompute=true")
    assert response.status_code == 202
    job = BackgroundJob.objects.get()
    assert response.json() == {"job_id": str(job.pk), "kind": "embeddings", "status": "pending", "queued_count": 1}
    assert job.params["adapter_ids"] == [str(adapters[1].pk)]
    assert job.params["force_recompute"] is True
    assert sent_tasks == [(TASK, [str(job.pk)], {})]


def test_compute_one_of_an_unknown_adapter_is_404(api, sent_tasks):
    response = api.post(f"{URL}/{uuid.uuid4()}/compute")
    assert response.status_code == 404
    assert response.json()["detail"] == "Adapter not found"
    assert not BackgroundJob.objects.exists()


def test_running_the_job_embeds_and_reports(adapters):
    job = start_job(batch_size=2)
    compute_embeddings(str(job.pk))
    job.refresh_from_db()
    assert (job.status, job.progress, job.error) == ("succeeded", 1.0, None)
    assert set(job.result) == RESULT_KEYS
    assert job.result["processed_count"] == 3
    assert (job.result["skipped_count"], job.result["error_count"], job.result["errors"]) == (0, 0, [])
    assert job.result["semantic_available"] is True
    assert job.result["processing_time_seconds"] >= 0
    assert job.result["completed_at"].endswith("Z")
    assert job.message.startswith("Embeddings: 3 computed, 0 skipped, 0 errors in ")
    assert AdapterEmbedding.objects.count() == 3


def test_a_finished_job_is_not_run_again(adapters):
    job = start_job()
    compute_embeddings(str(job.pk))
    AdapterEmbedding.objects.all().delete()
    compute_embeddings(str(job.pk))  # a redelivered task
    assert not AdapterEmbedding.objects.exists()


def test_a_job_cancelled_while_running_stops_between_batches(api, adapters, monkeypatch):
    # The row's status is read before every batch; the first batch cancels the job through the API.
    monkeypatch.setattr("loraforge.jobs.reporters.CANCEL_CHECK_INTERVAL", 0.0)
    job = start_job(batch_size=1)
    real_encode = Encoder.encode
    calls = []

    def encode_then_cancel(self, texts, *, batch_size=32, background=False):
        calls.append(len(texts))
        if len(calls) == 1:
            assert api.post(f"/api/v1/jobs/{job.pk}/cancel").status_code == 200
        return real_encode(self, texts, batch_size=batch_size, background=background)

    monkeypatch.setattr(Encoder, "encode", encode_then_cancel)
    compute_embeddings(str(job.pk))
    job.refresh_from_db()
    assert calls == [1]
    assert job.status == "cancelled"
    assert set(job.result) == RESULT_KEYS
    assert (job.result["processed_count"], job.result["skipped_count"]) == (1, 0)
    assert AdapterEmbedding.objects.count() == 1


def test_a_job_out_of_time_fails_with_the_time_limit_error(adapters, monkeypatch):
    def out_of_time(self, texts, *, batch_size=32, background=False):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(Encoder, "encode", out_of_time)
    job = start_job()
    compute_embeddings(str(job.pk))
    job.refresh_from_db()
    assert (job.status, job.error) == ("failed", TIME_LIMIT_EXCEEDED)


def test_without_semantic_embeddings_the_job_succeeds_and_says_so(adapters, unavailable_model):
    job = start_job()
    compute_embeddings(str(job.pk))
    job.refresh_from_db()
    assert job.status == "succeeded"
    assert job.result["semantic_available"] is False
    assert (job.result["processed_count"], job.result["skipped_count"], job.result["error_count"]) == (0, 3, 0)
    assert job.message == (
        f"Semantic embeddings unavailable (Model folder not found: {unavailable_model}); lexical index rebuilt only."
    )
    assert not AdapterEmbedding.objects.exists()


def test_the_job_is_served_by_the_jobs_endpoint(api, adapters):
    job = start_job()
    compute_embeddings(str(job.pk))
    body = api.get(f"/api/v1/jobs/{job.pk}").json()["job"]
    assert (body["kind"], body["status"], body["created_via"]) == ("embeddings", "succeeded", "api")
    assert body["result"]["processed_count"] == 3


def test_a_redelivered_task_leaves_a_running_job_with_a_fresh_heartbeat_alone(adapters):
    job = start_job()
    assert job.start()
    compute_embeddings(str(job.pk))
    job.refresh_from_db()
    assert job.status == "running"
    assert not AdapterEmbedding.objects.exists()


def test_a_redelivered_task_fails_a_running_job_whose_worker_was_lost(adapters):
    job = start_job()
    assert job.start()
    BackgroundJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(days=1))
    compute_embeddings(str(job.pk))
    job.refresh_from_db()
    assert (job.status, job.error) == ("failed", WORKER_LOST)
    assert not AdapterEmbedding.objects.exists()
