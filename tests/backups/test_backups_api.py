"""The backup endpoints as a client sees them (SPEC 5.9 "Backups"): history, create, detail, download, restore,
delete, with every error they answer."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backups.models import Backup
from loraforge.models import BackgroundJob
from tests.backups.helpers import completed_backup, stored_file
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db

HISTORY_KEYS = {
    "id", "created_at", "type", "backup_type", "size", "status", "sha256", "file_name", "download_url", "counts",
    "error", "finished_at",
}  # fmt: skip


def _problem(response: Any, status: int, detail: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["detail"] == detail
    return body


# --- history and detail ------------------------------------------------------------------------------------


def test_history_is_a_bare_list_newest_first(api, backup_dir):
    AdapterFactory()
    old = completed_backup("metadata_only")
    new = completed_backup("full")
    pending = Backup.objects.create(backup_type="full")
    response = api.get("/api/v1/backups/history")
    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body] == [str(pending.pk), str(new.pk), str(old.pk)]
    assert set(body[1]) == HISTORY_KEYS
    assert body[1] | {"created_at": None, "finished_at": None} == {
        "id": str(new.pk), "created_at": None, "finished_at": None, "type": "Full", "backup_type": "full",
        "size": new.size, "status": "completed", "sha256": new.sha256, "file_name": new.file_name,
        "download_url": f"/api/v1/backups/{new.pk}/download", "counts": new.counts, "error": None,
    }  # fmt: skip
    assert body[2]["type"] == "Metadata Only"
    assert (body[0]["size"], body[0]["status"]) == (None, "pending")
    assert body[1]["created_at"].endswith("Z")


def test_history_uses_one_query_whatever_the_number_of_backups(api, backup_dir):
    Backup.objects.bulk_create(Backup(status="failed") for _ in range(30))
    with CaptureQueriesContext(connection) as queries:
        response = api.get("/api/v1/backups/history/")
    assert response.status_code == 200
    assert len(response.json()) == 30
    assert len([query for query in queries if "backups_backup" in query["sql"]]) == 1


def test_one_backup_is_the_history_item(api, backup_dir):
    backup = completed_backup()
    response = api.get(f"/v1/backups/{backup.pk}/")
    assert response.status_code == 200
    assert response.json()["sha256"] == backup.sha256


@pytest.mark.parametrize("backup_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_an_unknown_backup_is_not_found(api, backup_id):
    _problem(api.get(f"/api/v1/backups/{backup_id}"), 404, "Backup not found")
    _problem(api.get(f"/api/v1/backups/{backup_id}/download"), 404, "Backup not found")
    _problem(api.post(f"/api/v1/backups/{backup_id}/restore", {}, format="json"), 404, "Backup not found")
    _problem(api.delete(f"/api/v1/backups/{backup_id}"), 404, "Backup not found")


# --- create ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/backup/create", "/api/v1/backups", "/v1/backups/", "/api/v1/backup/create/"])
def test_create_answers_202_with_the_pending_backup_and_queues_its_task(
    api, backup_dir, sent_tasks, django_capture_on_commit_callbacks, path
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(path, {"backup_type": "metadata_only"}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    backup = Backup.objects.get()
    assert body == {
        "success": True, "backup_id": str(backup.pk), "job_id": str(backup.job_id), "type": "Metadata Only",
        "backup_type": "metadata_only", "status": "pending", "size": None, "created_at": body["created_at"],
    }  # fmt: skip
    assert backup.trigger == "api"
    assert BackgroundJob.objects.get(pk=backup.job_id).kind == "backup"
    assert sent_tasks == [("backups.run_backup", [str(backup.job_id)], {})]


def test_create_defaults_to_a_full_backup(api, backup_dir, sent_tasks):
    response = api.post("/api/v1/backups", {}, format="json")
    assert response.status_code == 202
    assert (response.json()["backup_type"], response.json()["type"]) == ("full", "Full")


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ({"backup_type": "everything"}, "backup_type", '"everything" is not a valid choice.'),
        ({"backup_type": 1}, "backup_type", '"1" is not a valid choice.'),
        ({"backup_type": None}, "backup_type", "This field may not be null."),
        ({"kind": "full"}, "kind", "Unknown field."),
    ],
)
def test_create_rejects_an_invalid_body(api, backup_dir, sent_tasks, body, key, message):
    response = api.post("/api/v1/backup/create", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][key] == [message]
    assert not Backup.objects.exists()
    assert sent_tasks == []


@pytest.mark.django_db(transaction=True)
def test_create_answers_503_when_the_task_queue_is_unavailable(api, backup_dir, monkeypatch):
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr("loraforge.celery.app.send_task", refuse)
    body = _problem(api.post("/api/v1/backups", {}, format="json"), 503, "Task queue unavailable")
    backup = Backup.objects.get()
    assert body["job_id"] == str(backup.job_id)
    assert (backup.status, backup.error) == ("failed", "Task queue unavailable")


def test_writes_need_a_write_key(anon, read_only_key, backup_dir):
    from rest_framework.test import APIClient

    assert anon.get("/api/v1/backups/history").status_code == 401
    reader = APIClient()
    reader.credentials(HTTP_X_API_KEY=read_only_key)
    assert reader.get("/api/v1/backups/history").status_code == 200
    _problem(reader.post("/api/v1/backups", {}, format="json"), 403, "This API key is read-only")
    backup = Backup.objects.create(status="failed")
    _problem(reader.delete(f"/api/v1/backups/{backup.pk}"), 403, "This API key is read-only")
    _problem(reader.post(f"/api/v1/backups/{backup.pk}/restore", {}, format="json"), 403, "This API key is read-only")


# --- download ----------------------------------------------------------------------------------------------


def test_download_streams_the_file_with_its_length_and_name(api, backup_dir):
    AdapterFactory.create_batch(2)
    backup = completed_backup()
    response = api.get(f"/api/v1/backups/{backup.pk}/download")
    assert response.status_code == 200
    assert response.streaming
    content = b"".join(response.streaming_content)
    assert content == stored_file(backup).read_bytes()
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Length"] == str(backup.size)
    assert response["Content-Disposition"] == f'attachment; filename="{backup.file_name}"'


@pytest.mark.parametrize("status", ["pending", "running", "failed"])
def test_download_of_an_unfinished_backup_is_a_conflict(api, status):
    backup = Backup.objects.create(status=status)
    _problem(api.get(f"/api/v1/backups/{backup.pk}/download"), 409, "Backup is not completed")


def test_download_of_a_vanished_file_is_not_found(api, backup_dir):
    backup = completed_backup()
    stored_file(backup).unlink()
    _problem(api.get(f"/api/v1/backups/{backup.pk}/download"), 404, "Backup file is missing")


# --- restore -----------------------------------------------------------------------------------------------


def test_restore_answers_202_with_a_pending_restore_job(api, backup_dir, sent_tasks):
    backup = completed_backup()
    response = api.post(f"/api/v1/backups/{backup.pk}/restore", {"mode": "dry-run"}, format="json")
    assert response.status_code == 202, response.content
    job = BackgroundJob.objects.get(kind="restore")
    assert response.json() == {"job_id": str(job.pk), "kind": "restore", "status": "pending"}
    assert job.params == {"backup_id": str(backup.pk), "file": backup.file_name, "mode": "dry-run"}
    assert sent_tasks == [("backups.run_restore", [str(job.pk)], {})]


def test_restore_defaults_to_merge_and_rejects_an_unknown_mode(api, backup_dir, sent_tasks):
    backup = completed_backup()
    response = api.post(f"/api/v1/backups/{backup.pk}/restore", {"mode": "overwrite"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["mode"] == ['"overwrite" is not a valid choice.']
    response = api.post(f"/api/v1/backups/{backup.pk}/restore/", {}, format="json")
    assert response.status_code == 202
    assert BackgroundJob.objects.get(kind="restore").params["mode"] == "merge"


def test_restore_of_an_unfinished_backup_is_a_conflict(api):
    backup = Backup.objects.create(status="running")
    _problem(api.post(f"/api/v1/backups/{backup.pk}/restore", {}, format="json"), 409, "Backup is not completed")
    assert not BackgroundJob.objects.filter(kind="restore").exists()


def test_a_second_restore_while_one_runs_is_a_conflict_naming_it(api, backup_dir, sent_tasks):
    backup = completed_backup()
    first = api.post(f"/api/v1/backups/{backup.pk}/restore", {}, format="json").json()
    body = _problem(
        api.post(f"/api/v1/backups/{backup.pk}/restore", {}, format="json"), 409, "Another import or restore is running"
    )
    assert body["job_id"] == first["job_id"]


def test_a_restore_job_can_be_cancelled_while_pending_but_not_while_it_applies(api, backup_dir, sent_tasks):
    backup = completed_backup()
    job_id = api.post(f"/api/v1/backups/{backup.pk}/restore", {}, format="json").json()["job_id"]
    BackgroundJob.objects.filter(pk=job_id).update(status="running")
    _problem(api.post(f"/api/v1/jobs/{job_id}/cancel"), 409, "Job cannot be cancelled in its current state (running)")


# --- delete ------------------------------------------------------------------------------------------------


def test_delete_answers_204_and_removes_row_and_file(api, backup_dir):
    backup = completed_backup()
    path = stored_file(backup)
    response = api.delete(f"/api/v1/backups/{backup.pk}/")
    assert response.status_code == 204
    assert not path.exists()
    assert not Backup.objects.filter(pk=backup.pk).exists()


@pytest.mark.parametrize("status", ["pending", "running"])
def test_delete_of_a_backup_in_progress_is_a_conflict(api, status):
    backup = Backup.objects.create(status=status)
    _problem(api.delete(f"/api/v1/backups/{backup.pk}"), 409, "Backup is in progress")


def test_a_cancelled_backup_job_fails_its_backup_through_the_jobs_endpoint(api, backup_dir, sent_tasks):
    created = api.post("/api/v1/backups", {}, format="json").json()
    response = api.post(f"/api/v1/jobs/{created['job_id']}/cancel")
    assert response.json() == {"success": True, "status": "cancelled", "message": "Job cancelled"}
    item = api.get(f"/api/v1/backups/{created['backup_id']}").json()
    assert (item["status"], item["error"]) == ("failed", "Cancelled by user")
