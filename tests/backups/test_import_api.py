"""``POST /import`` (SPEC 5.9, 6.10.2, 7): uploads streamed to disk, every broken or malicious archive refused with
its message while the other files of the request are still imported, nothing written for a refused file, one
import at a time, the job row and its events.

The apply phase (``backups.archive.apply``) is replaced by a recording stand-in here: these tests are about what
reaches it and what never does; the real apply has its own tests and the round trips."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import time
import types
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.middleware.csrf import _get_new_csrf_string
from rest_framework.test import APIClient, APIRequestFactory

from backups.views.imports import ImportView
from loraforge.models import BackgroundJob
from tests.backups.archives import GOOD, make_archive, manifest_for, with_member
from tests.backups.forge import DEFLATED, MiB, RawMember, manifest_member, raw_zip, zeros_bomb
from tests.progress_events import EventRecorder, job_events

pytestmark = pytest.mark.django_db

URL = "/api/v1/import"
DATA_APPS = ("adapters", "deliveries", "generation", "recommendations", "analytics", "backups")


# --- fixtures -----------------------------------------------------------------------------------------


class FakeApply:
    """Stands in for ``backups.archive.apply.archive_apply``: records each call, answers like the real one."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_for: set[str] = set()

    def __call__(self, archive: Any, *, mode: str, job_id: str, progress: Any = None) -> dict[str, Any]:
        self.calls.append({"archive": archive, "mode": mode, "job_id": job_id})
        if archive.manifest.get("app_version") in self.fail_for:
            raise RuntimeError("database exploded")
        planned = mode == "dry-run"
        return {
            "status": "validated" if planned else "imported",
            "created": 1, "updated": 0, "skipped": 0,
            "adapters": [{"id": "a", "name": "a", "status": "would_create" if planned else "created"}],
            "parts": {"embeddings": 0, "generation_jobs": 0, "generation_results": 0},
            "warnings": [], "errors": [],
        }  # fmt: skip


@pytest.fixture
def fake_apply(monkeypatch) -> FakeApply:
    fake = FakeApply()
    module = types.ModuleType("backups.archive.apply")
    module.archive_apply = fake  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "backups.archive.apply", module)
    return fake


@pytest.fixture
def upload_dir(tmp_path, settings) -> Path:
    settings.LORAFORGE_UPLOAD_DIR = tmp_path / "uploads"
    return settings.LORAFORGE_UPLOAD_DIR


@pytest.fixture
def recorder():
    recorder = EventRecorder()
    yield recorder
    recorder.close()


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/zip")


def good_archive(tmp_path: Path, name: str = "good.zip", **manifest: Any) -> bytes:
    return make_archive(tmp_path / name, GOOD, manifest=manifest_for(GOOD, **manifest)).read_bytes()


def post(client, *files: SimpleUploadedFile, config: Any = None, **extra: Any):
    data: dict[str, Any] = {"files": list(files)}
    if config is not None:
        data["config"] = config if isinstance(config, str) else json.dumps(config)
    return client.post(URL, data, format="multipart", **extra)


def listing(*roots: Path) -> dict[str, str]:
    """Every file under ``roots`` with its SHA-256, the SQLite database's own files (``test_db.sqlite3``, its WAL and
    shared memory) left out: never opened, since closing any descriptor of a database file drops this process's
    POSIX locks on it, which corrupted the test database of the whole run."""
    found = {}
    for root in roots:
        for path in sorted(Path(root).rglob("*")):
            if path.is_file() and ".sqlite3" not in path.name:
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def row_counts() -> dict[str, int]:
    return {
        model._meta.label: model._default_manager.count()
        for label in DATA_APPS
        for model in apps.get_app_config(label).get_models()
    }


def uploads_left(upload_dir: Path) -> list[Path]:
    return [path for path in upload_dir.rglob("*") if path.is_file()] if upload_dir.exists() else []


# --- broken and malicious archives (SPEC 7 "Import") ----------------------------------------------------


def _zip_with(tmp_path: Path, name: str, data: bytes = b"x", **info: Any) -> bytes:
    return with_member(tmp_path, name, data, **info).read_bytes()


def _raw(tmp_path: Path, *members: RawMember) -> bytes:
    return raw_zip(tmp_path / "raw.zip", list(members)).read_bytes()


def _bomb(tmp_path: Path) -> bytes:
    name = "adapters/a/files/bomb.safetensors"
    member = RawMember(name, zeros_bomb(2048), method=DEFLATED, file_size=1000, crc=0)
    entry = {"path": name, "size": 1000, "sha256": hashlib.sha256(b"\0" * 1000).hexdigest()}
    return _raw(tmp_path, member, manifest_member({}, members=[entry]))


def _manifest(tmp_path: Path, manifest: Any, members: dict[str, bytes] = GOOD) -> bytes:
    return make_archive(tmp_path / "m.zip", members, manifest=manifest).read_bytes()


BAD_ARCHIVES = {
    "not a zip": (lambda tmp: b"this is not a zip", "Not a ZIP archive"),
    "zip slip": (lambda tmp: _zip_with(tmp, "../../etc/passwd"),
                 "Archive member path escapes the archive root: ../../etc/passwd"),
    "absolute": (lambda tmp: _zip_with(tmp, "/etc/cron.d/x"),
                 "Archive member path escapes the archive root: /etc/cron.d/x"),
    "drive": (lambda tmp: _zip_with(tmp, "C:/x.dll"), "Archive member path escapes the archive root: C:/x.dll"),
    "backslash": (lambda tmp: _zip_with(tmp, "..\\..\\x"), "Archive member path escapes the archive root: ..\\..\\x"),
    "nul": (lambda tmp: _raw(tmp, RawMember("a\x00.json", b"x"), manifest_member({})),
            "Archive member path escapes the archive root: a\\x00.json"),
    "dot segment": (lambda tmp: _zip_with(tmp, "adapters/./a.json"),
                    "Archive member path escapes the archive root: adapters/./a.json"),
    "duplicate": (lambda tmp: _raw(tmp, RawMember("a/b", b"1"), RawMember("a/b", b"2"), manifest_member({})),
                  "Duplicate archive member: a/b"),
    "symlink": (lambda tmp: _zip_with(tmp, "adapters/a/l", b"/etc/passwd", external_attr=(stat.S_IFLNK | 0o777) << 16),
                "Archive member is a symbolic link: adapters/a/l"),
    "special file": (lambda tmp: _zip_with(tmp, "adapters/a/p", b"", external_attr=(stat.S_IFIFO | 0o644) << 16),
                     "Archive member is a symbolic link: adapters/a/p"),
    "ratio": (lambda tmp: _zip_with(tmp, "adapters/a/files/z.bin", b"\0" * (4 * MiB)),
              "Suspicious compression ratio for adapters/a/files/z.bin"),
    "manifest missing": (lambda tmp: make_archive(tmp / "x.zip", GOOD, with_manifest=False).read_bytes(),
                         "manifest.json is missing"),
    "manifest invalid": (lambda tmp: _manifest(tmp, b"{oops"), "manifest.json is not valid JSON"),
    "manifest not an object": (lambda tmp: _manifest(tmp, b"[]"), "manifest.json is not valid JSON"),
    "wrong format": (lambda tmp: _manifest(tmp, manifest_for(GOOD, format="other")), "Not a LoRAForge archive"),
    "unknown version": (lambda tmp: _manifest(tmp, manifest_for(GOOD, format_version=7)),
                        "Unsupported archive format version 7"),
    "unlisted member": (lambda tmp: _manifest(tmp, manifest_for(GOOD), {**GOOD, "x/evil": b"1"}),
                        "Archive member not listed in manifest: x/evil"),
    "missing member": (lambda tmp: _manifest(tmp, manifest_for({**GOOD, "x/gone": b"1"})),
                       "Manifest lists a missing member: x/gone"),
    "checksum": (lambda tmp: _manifest(tmp, manifest_for({**GOOD, "config/backends.json": b"{}"})),
                 "Checksum mismatch for config/backends.json"),
    "zip bomb": (_bomb, "Archive member larger than declared: adapters/a/files/bomb.safetensors"),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(BAD_ARCHIVES))
def test_bad_archive_is_refused_nothing_written_and_the_other_file_imported(
    api, tmp_path, lora_dir, upload_dir, fake_apply, kind
):
    build, message = BAD_ARCHIVES[kind]
    bad, good = build(tmp_path), good_archive(tmp_path)
    files_before, rows_before = listing(Path(django_settings.DATA_DIR), lora_dir), row_counts()

    response = post(api, upload("evil.zip", bad), upload("library.zip", good))

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is False
    assert (body["processed_files"], body["total_files"]) == (1, 2)
    assert body["results"][0] == {"file": "evil.zip", "status": "error", "detail": message, "errors": [message]}
    assert body["results"][1]["file"] == "library.zip"
    assert body["results"][1]["status"] == "imported"
    assert [call["archive"].manifest["members"] for call in fake_apply.calls] == [manifest_for(GOOD)["members"]]
    assert listing(Path(django_settings.DATA_DIR), lora_dir) == files_before
    assert row_counts() == rows_before
    assert uploads_left(upload_dir) == []


@pytest.mark.parametrize(
    ("setting", "members"),
    [
        ("LORAFORGE_IMPORT_MAX_MEMBERS", {f"m/{i}": b"x" for i in range(5)}),
        ("LORAFORGE_IMPORT_MAX_MEMBER_MB", {"m/big": b"\1" * (MiB + 1)}),
    ],
)
def test_archive_over_a_limit_is_refused(api, tmp_path, settings, upload_dir, fake_apply, setting, members):
    setattr(settings, setting, 1 if setting.endswith("_MB") else 4)
    path = make_archive(tmp_path / "x.zip", members)
    body = post(api, upload("x.zip", path.read_bytes())).json()
    expected = "Archive has too many members" if setting.endswith("MEMBERS") else "Archive is too large when extracted"
    assert body["results"] == [{"file": "x.zip", "status": "error", "detail": expected, "errors": [expected]}]
    assert body["success"] is False
    assert body["processed_files"] == 0
    assert fake_apply.calls == []


def test_not_enough_disk_space_refuses_every_file(api, tmp_path, monkeypatch, upload_dir, fake_apply):
    usage = namedtuple("usage", "total used free")(0, 0, 1024 * MiB)
    monkeypatch.setattr("backups.archive.validate.shutil.disk_usage", lambda path: usage)
    body = post(api, upload("a.zip", good_archive(tmp_path)), upload("b.zip", good_archive(tmp_path, "b.zip"))).json()
    assert [result["detail"] for result in body["results"]] == ["Not enough disk space"] * 2
    assert body["success"] is False
    assert fake_apply.calls == []


# --- success, modes, the job ---------------------------------------------------------------------------------


def test_import_reports_the_apply_result_and_records_the_job(api, tmp_path, upload_dir, fake_apply):
    response = post(api, upload("library.zip", good_archive(tmp_path)))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"success", "processed_files", "total_files", "mode", "job_id", "results"}
    assert (body["success"], body["processed_files"], body["total_files"], body["mode"]) == (True, 1, 1, "merge")
    assert body["results"][0]["file"] == "library.zip"
    assert body["results"][0]["adapters"] == [{"id": "a", "name": "a", "status": "created"}]
    job = BackgroundJob.objects.get(pk=body["job_id"])
    assert (job.kind, job.status, job.created_via, job.progress) == ("import", "succeeded", "api", 1.0)
    assert job.result == body
    assert job.params == {"mode": "merge", "backup_before": False, "files": ["library.zip"]}
    assert fake_apply.calls[0]["job_id"] == body["job_id"]
    assert fake_apply.calls[0]["mode"] == "merge"
    assert uploads_left(upload_dir) == []


@pytest.mark.parametrize(("given", "mode"), [("merge", "merge"), ("replace", "replace"), ("dry-run", "dry-run"),
                                             ("dryrun", "dry-run"), ("preview", "dry-run")])  # fmt: skip
def test_modes_and_their_aliases(api, tmp_path, upload_dir, fake_apply, given, mode):
    body = post(api, upload("a.zip", good_archive(tmp_path)), config={"mode": given}).json()
    assert body["mode"] == mode
    assert fake_apply.calls[0]["mode"] == mode
    assert body["results"][0]["status"] == ("validated" if mode == "dry-run" else "imported")


def test_compatibility_keys_are_accepted_and_ignored(api, tmp_path, upload_dir, fake_apply):
    config = {"mode": "merge", "conflict_resolution": "overwrite", "validate": False, "password": ""}
    assert post(api, upload("a.zip", good_archive(tmp_path)), config=config).json()["success"] is True
    assert len(fake_apply.calls) == 1


def test_unexpected_error_in_one_file_does_not_stop_the_others(api, tmp_path, upload_dir, fake_apply):
    fake_apply.fail_for.add("broken")
    first = good_archive(tmp_path, "a.zip", app_version="broken")
    body = post(api, upload("a.zip", first), upload("b.zip", good_archive(tmp_path, "b.zip"))).json()
    assert body["results"][0]["status"] == "error"
    assert body["results"][0]["detail"].startswith("Unexpected error while importing this file (reference ")
    assert "exploded" not in body["results"][0]["detail"]
    assert body["results"][1]["status"] == "imported"
    assert (body["success"], body["processed_files"]) == (False, 1)


@pytest.mark.django_db(transaction=True)
def test_job_progress_events_follow_the_job(api, tmp_path, upload_dir, fake_apply, recorder):
    body = post(api, upload("a.zip", good_archive(tmp_path)), upload("b.zip", b"junk")).json()
    events = [data for data in job_events(recorder.events()) if data["job_id"] == body["job_id"]]
    assert [events[0]["status"], events[1]["status"], events[-1]["status"]] == ["pending", "running", "succeeded"]
    assert all(data["kind"] == "import" for data in events)
    progresses = [data["progress"] for data in events]
    assert progresses == sorted(progresses)
    assert progresses[-1] == 1.0
    assert events[-1]["result"] == body
    assert any(data["message"] == "Importing b.zip (2/2)" for data in events)


# --- backup before -----------------------------------------------------------------------------------------


@pytest.fixture
def fake_backup(monkeypatch, fake_apply):
    calls: list[tuple[str, dict]] = []
    outcome = {"status": "completed", "error": None}

    def backup_create_sync(**kwargs):
        calls.append(("backup", kwargs, len(fake_apply.calls)))
        if outcome["status"] == "raise":
            raise RuntimeError("disk full")
        return types.SimpleNamespace(**outcome)

    module = types.ModuleType("backups.services.backups")
    module.backup_create_sync = backup_create_sync
    monkeypatch.setitem(sys.modules, "backups.services.backups", module)
    return types.SimpleNamespace(calls=calls, outcome=outcome)


def test_backup_before_runs_a_metadata_only_backup_first(api, tmp_path, upload_dir, fake_backup, fake_apply):
    body = post(api, upload("a.zip", good_archive(tmp_path)), config={"backup_before": True}).json()
    assert fake_backup.calls == [("backup", {"backup_type": "metadata_only", "trigger": "api"}, 0)]
    assert body["success"] is True
    assert len(fake_apply.calls) == 1


def test_backup_before_is_skipped_for_a_dry_run(api, tmp_path, upload_dir, fake_backup, fake_apply):
    post(api, upload("a.zip", good_archive(tmp_path)), config={"backup_before": True, "mode": "preview"})
    assert fake_backup.calls == []
    assert len(fake_apply.calls) == 1


@pytest.mark.parametrize(("status", "error"), [("raise", "disk full"), ("failed", "No space left")])
def test_failed_backup_before_imports_nothing(api, tmp_path, upload_dir, fake_backup, fake_apply, status, error):
    fake_backup.outcome.update(status=status, error=error)
    body = post(api, upload("a.zip", good_archive(tmp_path)), config={"backup_before": True}).json()
    message = f"Backup before import failed: {error}"
    assert body["results"] == [{"file": "a.zip", "status": "error", "detail": message, "errors": [message]}]
    assert fake_apply.calls == []
    assert uploads_left(upload_dir) == []


# --- one at a time -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "status"), [("import", "pending"), ("import", "running"), ("restore", "running")])
def test_another_import_or_restore_is_a_409(api, tmp_path, upload_dir, fake_apply, kind, status):
    other = BackgroundJob.objects.create(kind=kind, status=status)
    response = post(api, upload("a.zip", good_archive(tmp_path)))
    assert response.status_code == 409
    body = response.json()
    assert body["detail"] == "Another import or restore is running"
    assert body["job_id"] == str(other.pk)
    assert BackgroundJob.objects.count() == 1
    assert fake_apply.calls == []
    assert uploads_left(upload_dir) == []


def test_a_finished_import_does_not_block(api, tmp_path, upload_dir, fake_apply):
    BackgroundJob.objects.create(kind="import", status="succeeded")
    assert post(api, upload("a.zip", good_archive(tmp_path))).status_code == 200


# --- request validation ----------------------------------------------------------------------------------------


def test_no_files_is_a_400(api, upload_dir):
    response = api.post(URL, {"config": "{}"}, format="multipart")
    assert response.status_code == 400
    assert response.json()["errors"] == {"files": ["At least one file is required"]}


def test_more_than_10_files_is_a_400_and_nothing_is_kept(api, upload_dir, fake_apply):
    response = post(api, *[upload(f"{index}.zip", b"x" * 1000) for index in range(11)])
    assert response.status_code == 400
    assert response.json()["errors"] == {"files": ["At most 10 files can be imported at once"]}
    assert uploads_left(upload_dir) == []
    assert fake_apply.calls == []


@pytest.mark.parametrize("config", ["not json", "[1]", '"text"', "null", "1"])
def test_config_not_a_json_object(api, tmp_path, upload_dir, config):
    response = post(api, upload("a.zip", good_archive(tmp_path)), config=config)
    assert response.status_code == 400
    assert response.json()["errors"] == {"config": ["config must be a JSON object"]}
    assert uploads_left(upload_dir) == []


@pytest.mark.parametrize(
    ("config", "errors"),
    [
        ({"password": "secret"}, {"config.password": ["Encrypted archives are not supported"]}),
        ({"mode": "later"}, {"config.mode": ["mode must be one of: merge, replace, dry-run"]}),
        ({"backup_before": "yes"}, {"config.backup_before": ["Must be a boolean (true or false)."]}),
        ({"surprise": 1}, {"config.surprise": ["Unknown field."]}),
    ],
)
def test_invalid_config_fields(api, tmp_path, upload_dir, fake_apply, config, errors):
    response = post(api, upload("a.zip", good_archive(tmp_path)), config=config)
    assert response.status_code == 400
    assert response.json()["errors"] == errors
    assert fake_apply.calls == []
    assert BackgroundJob.objects.count() == 0


def test_unknown_form_fields_are_400(api, tmp_path, upload_dir):
    response = api.post(URL, {"files": [upload("a.zip", b"x")], "other": "1"}, format="multipart")
    assert response.status_code == 400
    assert response.json()["errors"] == {"other": ["Unknown field."]}
    response = api.post(URL, {"file": [upload("a.zip", b"x")]}, format="multipart")
    assert response.status_code == 400
    assert response.json()["errors"] == {"file": ["Unknown field."]}
    assert uploads_left(upload_dir) == []


def test_json_body_is_a_415(api):
    response = api.post(URL, {"files": []}, format="json")
    assert response.status_code == 415
    assert response.json()["detail"] == "Content-Type must be multipart/form-data"


def test_anonymous_is_401_and_read_only_key_is_403(anon, read_only_key, tmp_path, upload_dir, fake_apply):
    assert post(anon, upload("a.zip", good_archive(tmp_path))).status_code == 401
    response = post(anon, upload("a.zip", good_archive(tmp_path)), HTTP_X_API_KEY=read_only_key)
    assert response.status_code == 403
    assert response.json()["detail"] == "This API key is read-only"
    assert fake_apply.calls == []
    assert uploads_left(upload_dir) == []


def test_v1_prefix_and_trailing_slash(api, tmp_path, upload_dir, fake_apply):
    data = {"files": [upload("a.zip", good_archive(tmp_path))]}
    assert api.post("/v1/import/", data, format="multipart").status_code == 200


# --- upload limits ---------------------------------------------------------------------------------------------


def test_declared_length_over_the_limit_is_413_before_anything_is_stored(api, settings, upload_dir, fake_apply):
    settings.LORAFORGE_MAX_UPLOAD_MB = 1
    response = post(api, upload("big.zip", b"\0" * (MiB + 1)))
    assert response.status_code == 413
    assert response.json()["detail"] == "Upload too large (limit 1 MB)"
    assert not upload_dir.exists()
    assert BackgroundJob.objects.count() == 0


def test_upload_handler_stops_past_the_limit_and_removes_what_it_wrote(api_key, settings, upload_dir):
    """Without the middleware (as for a body whose length was not declared): the handler counts stored bytes."""
    settings.LORAFORGE_MAX_UPLOAD_MB = 1
    files = [upload("a.zip", b"a" * (MiB // 2 + 10)), upload("b.zip", b"b" * (MiB // 2 + 10))]
    request = APIRequestFactory().post(URL, {"files": files}, format="multipart", HTTP_X_API_KEY=api_key)
    response = ImportView.as_view()(request)
    response.render()
    assert response.status_code == 413
    assert json.loads(response.content)["detail"] == "Upload too large (limit 1 MB)"
    assert uploads_left(upload_dir) == []


def test_uploads_are_written_to_the_upload_dir_and_removed(api, tmp_path, upload_dir, monkeypatch, fake_apply):
    seen: list[tuple[Path, bool, bytes]] = []
    from backups.services import imports

    original = imports.archive_validate

    def spy(path, **kwargs):
        seen.append((path.parent, path.exists(), path.read_bytes()[:2]))
        return original(path, **kwargs)

    monkeypatch.setattr(imports, "archive_validate", spy)
    post(api, upload("a.zip", good_archive(tmp_path)))
    assert seen == [(upload_dir, True, b"PK")]
    assert uploads_left(upload_dir) == []


def test_config_json_object_size_is_bounded_by_the_form_limit(api, tmp_path, settings, upload_dir):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = post(api, upload("a.zip", b"x"), config={"mode": "merge", "pad": "x" * 4096})
    assert response.status_code in (400, 413)
    assert uploads_left(upload_dir) == []


def test_empty_config_means_the_defaults(api, tmp_path, upload_dir, fake_apply):
    body = post(api, upload("a.zip", good_archive(tmp_path)), config="").json()
    assert (body["success"], body["mode"]) == (True, "merge")


def test_stale_uploads_of_a_killed_process_are_removed(api, tmp_path, upload_dir, fake_apply):
    upload_dir.mkdir(parents=True)
    stale, fresh, other = upload_dir / "upload-old.part", upload_dir / "upload-new.part", upload_dir / "keep.txt"
    for path in (stale, fresh, other):
        path.write_bytes(b"x")
    day_ago = time.time() - 24 * 3600 - 60
    os.utime(stale, (day_ago, day_ago))
    os.utime(other, (day_ago, day_ago))
    post(api, upload("a.zip", good_archive(tmp_path)))
    assert sorted(path.name for path in upload_dir.iterdir()) == ["keep.txt", "upload-new.part"]


def test_multipart_request_without_a_body_is_a_400(api, upload_dir):
    response = api.generic("POST", URL, b"", content_type="multipart/form-data; boundary=x")
    assert response.status_code == 400
    assert response.json()["errors"] == {"files": ["At least one file is required"]}


def test_staff_session_without_csrf_is_403_and_its_upload_removed(tmp_path, upload_dir, fake_apply, settings):
    staff = User.objects.create_user("staff", password="x", is_staff=True)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff)
    client.cookies[settings.CSRF_COOKIE_NAME] = _get_new_csrf_string()  # the check then reads the form's token
    response = post(client, upload("a.zip", good_archive(tmp_path)))
    assert response.status_code == 403
    assert response.json()["detail"] == "CSRF token missing or incorrect"
    assert fake_apply.calls == []
    assert uploads_left(upload_dir) == []


def test_staff_session_with_csrf_token_imports(tmp_path, upload_dir, fake_apply, settings):
    staff = User.objects.create_user("staff", password="x", is_staff=True)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff)
    token = _get_new_csrf_string()
    client.cookies[settings.CSRF_COOKIE_NAME] = token
    response = post(client, upload("a.zip", good_archive(tmp_path)), HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    assert response.json()["success"] is True
    assert uploads_left(upload_dir) == []
