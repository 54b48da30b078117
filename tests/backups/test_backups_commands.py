"""``manage.py backup``, ``restore_backup`` and ``verify_backup`` (SPEC 8): output, exit codes, and the rows they
record like the API does."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from backups.archive.estimate import format_size
from backups.models import Backup
from backups.services import restore
from loraforge.models import BackgroundJob
from tests.backups.helpers import completed_backup, first_member_data_offset, sha256_of, stored_file, tamper
from tests.factories import AdapterFactory
from tests.processes import manage_command

pytestmark = pytest.mark.django_db


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(*args: str, stderr: io.StringIO | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), stderr or io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


# --- backup --------------------------------------------------------------------------------------------------


def test_backup_prints_the_summary_and_records_the_row_and_job(backup_dir):
    AdapterFactory.create_batch(2)
    code, out, err = run("backup", "--no-progress")
    backup = Backup.objects.get()
    path = stored_file(backup)
    assert code == 0, err
    assert (
        out.strip()
        == f"Backup {backup.pk} completed: {path} ({format_size(path.stat().st_size)}, sha256 {sha256_of(path)})"
    )
    assert re.fullmatch(r"Backup \S+ completed: \S+ \(\d+\.\d\d KB, sha256 [0-9a-f]{64}\)", out.strip())
    assert (backup.status, backup.trigger, backup.backup_type) == ("completed", "cli", "full")
    job = BackgroundJob.objects.get(pk=backup.job_id)
    assert (job.kind, job.status, job.created_via) == ("backup", "succeeded", "cli")


def test_backup_draws_a_bar_over_bytes_on_a_terminal(backup_dir):
    AdapterFactory.create_batch(2)
    code, _out, err = run("backup", "--type", "metadata_only", stderr=Terminal())
    assert code == 0
    assert re.search(r"\d+(\.\d+)?B? \[", err) or "B/s" in err, err


def test_backup_json_prints_the_history_item(backup_dir):
    code, out, _err = run("backup", "--type", "metadata_only", "--json", "--no-progress")
    body = json.loads(out)
    backup = Backup.objects.get()
    assert code == 0
    assert (body["id"], body["type"], body["status"], body["sha256"]) == (
        str(backup.pk), "Metadata Only", "completed", backup.sha256,
    )  # fmt: skip


def test_backup_applies_retention_unless_told_not_to(backup_dir, settings):
    settings.LORAFORGE_BACKUP_KEEP = 1
    run("backup", "--no-progress")
    run("backup", "--no-progress")
    assert Backup.objects.count() == 1
    run("backup", "--no-progress", "--no-retention")
    assert Backup.objects.count() == 2


def test_backup_output_writes_a_standalone_archive_without_a_row(backup_dir, tmp_path):
    AdapterFactory()
    target = tmp_path / "elsewhere" / "library.zip"
    target.parent.mkdir()
    code, out, err = run("backup", "--output", str(target), "--no-progress")
    assert code == 0, err
    assert (
        out.strip() == f"Backup completed: {target} ({format_size(target.stat().st_size)}, sha256 {sha256_of(target)})"
    )
    assert zipfile.ZipFile(target).testzip() is None
    assert not Backup.objects.exists()
    assert list(target.parent.iterdir()) == [target]
    code, _out, err = run("backup", "--output", str(target), "--no-progress")
    assert (code, err.strip()) == (1, f"{target} already exists")


def test_backup_failure_exits_1_with_the_error(backup_dir, monkeypatch):
    def write(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("backups.services.backups.archive_writer", lambda: write)
    code, out, err = run("backup", "--no-progress")
    assert (code, out, err.strip()) == (1, "", "Backup failed: [Errno 28] No space left on device")
    assert Backup.objects.get().status == "failed"


# --- restore_backup ------------------------------------------------------------------------------------------


def _importer(monkeypatch: pytest.MonkeyPatch, status: str = "imported", detail: str | None = None) -> list[dict]:
    calls: list[dict] = []

    def archive_import_file(path: Path, **kwargs: Any) -> dict[str, Any]:
        calls.append({"path": path, **kwargs})
        if status == "error":
            return {"file": kwargs["display_name"], "status": "error", "detail": detail, "errors": [detail]}
        return {
            "file": kwargs["display_name"], "status": status, "created": 2, "updated": 1, "skipped": 0,
            "adapters": [], "parts": {"embeddings": 3, "generation_jobs": 0, "generation_results": 0},
            "warnings": [], "errors": [],
        }  # fmt: skip

    monkeypatch.setattr(restore, "archive_importer", lambda: archive_import_file)
    return calls


def test_restore_backup_by_id_prints_the_summary(backup_dir, monkeypatch):
    backup = completed_backup()
    calls = _importer(monkeypatch)
    code, out, err = run("restore_backup", str(backup.pk), "--no-progress")
    assert code == 0, err
    assert out.strip() == (
        f"Restored {backup.file_name} (merge): 2 created, 1 updated, 0 skipped; 3 embeddings, 0 generation jobs"
    )
    assert calls[0]["mode"] == "merge"
    job = BackgroundJob.objects.get(kind="restore")
    assert (job.status, job.created_via) == ("succeeded", "cli")


def test_restore_backup_of_a_file_with_json(backup_dir, monkeypatch, tmp_path):
    backup = completed_backup()
    copy = tmp_path / "copy.zip"
    copy.write_bytes(stored_file(backup).read_bytes())
    _importer(monkeypatch, status="validated")
    code, out, _err = run("restore_backup", str(copy), "--mode", "dry-run", "--json", "--no-progress")
    assert code == 0
    assert json.loads(out)["status"] == "validated"
    assert json.loads(out)["file"] == "copy.zip"


def test_restore_backup_prints_a_validation_error_and_exits_1(backup_dir, monkeypatch):
    backup = completed_backup()
    _importer(monkeypatch, status="error", detail="Checksum mismatch for adapters/x/adapter.json")
    code, out, err = run("restore_backup", str(backup.pk), "--no-progress")
    assert (code, out, err.strip()) == (1, "", "Checksum mismatch for adapters/x/adapter.json")


def test_restore_backup_refuses_a_tampered_backup(backup_dir, monkeypatch):
    AdapterFactory()
    backup = completed_backup()
    tamper(stored_file(backup))
    calls = _importer(monkeypatch)
    code, _out, err = run("restore_backup", str(backup.pk), "--yes", "--mode", "replace", "--no-progress")
    assert code == 1
    assert err.startswith("Backup file does not match its recorded SHA-256")
    assert calls == []


def test_restore_backup_of_an_unknown_source_exits_1(backup_dir):
    code, _out, err = run("restore_backup", "/no/such/file.zip")
    assert (code, err.strip()) == (1, "No backup or archive file named /no/such/file.zip")


def test_replace_without_yes_is_refused_when_not_interactive(tmp_path):
    archive = tmp_path / "library.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    done = manage_command("restore_backup", str(archive), "--mode", "replace", tmp_path=tmp_path)
    assert (done.returncode, done.stdout, done.stderr.strip()) == (1, "", "Refusing to replace without --yes")


# --- verify_backup -------------------------------------------------------------------------------------------


def test_verify_backup_says_ok_with_the_counts(backup_dir):
    AdapterFactory.create_batch(2)
    backup = completed_backup()
    path = stored_file(backup)
    members = len(json.loads(zipfile.ZipFile(path).read("manifest.json"))["members"])
    code, out, _err = run("verify_backup", str(backup.pk))
    assert code == 0
    assert out.strip().startswith(f"OK: {path}: {members} members match the manifest (2 adapters")


def test_verify_backup_reports_each_problem_of_a_tampered_backup(backup_dir):
    AdapterFactory.create_batch(2)
    backup = completed_backup()
    path = stored_file(backup)
    tamper(path, offset=first_member_data_offset(path))
    code, out, err = run("verify_backup", str(backup.pk))
    lines = err.strip().splitlines()
    assert (code, out) == (1, "")
    assert lines[0].startswith("Backup file does not match its recorded SHA-256")
    assert len(lines) == 2


def test_verify_backup_of_a_file_and_json(backup_dir, tmp_path):
    AdapterFactory()
    copy = tmp_path / "copy.zip"
    copy.write_bytes(stored_file(completed_backup()).read_bytes())
    code, out, _err = run("verify_backup", str(copy), "--json")
    assert code == 0
    report = json.loads(out)
    members = len(json.loads(zipfile.ZipFile(copy).read("manifest.json"))["members"])
    assert (report["ok"], report["path"], report["members"], report["problems"]) == (True, str(copy), members, [])
    assert report["counts"]["adapters"] == 1
    copy.write_bytes(b"not a zip at all")
    code, out, err = run("verify_backup", str(copy))
    assert (code, err.strip()) == (1, "Not a ZIP archive")
