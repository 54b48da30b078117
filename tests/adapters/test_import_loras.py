"""``manage.py import_loras`` (SPEC 8): the summary, ``--json``, exit codes, the job it records."""

from __future__ import annotations

import errno
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from adapters.models import Adapter, ScannedFile
from adapters.scan_service import scan_summary
from adapters.signals import adapters_imported
from loraforge.models import BackgroundJob
from tests.lora_files import write_safetensors
from tests.processes import manage_command
from tests.progress_events import EventRecorder, job_events

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command("import_loras", *args, stdout=stdout, stderr=stderr)
    except SystemExit as exc:
        code = int(exc.code or 0)
    else:
        code = 0
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def library(lora_dir: Path) -> list[Path]:
    return [
        write_safetensors(lora_dir / "anime" / "celestial.safetensors", seed=1),
        write_safetensors(lora_dir / "ink.safetensors", seed=2),
    ]


def test_prints_the_summary_then_one_line_per_item(library, lora_dir):
    code, stdout, stderr = run("--no-progress")
    job = BackgroundJob.objects.get()
    lines = stdout.splitlines()
    assert code == 0, stderr
    assert lines[0] == scan_summary(job.result)
    assert lines[0].startswith(
        "Scanned 2 files in 1 folder: 2 created, 0 updated, 0 changed, 0 unchanged, 0 moved, 0 duplicates, "
        "0 missing, 0 excluded, 0 errors; hashed 2 files ("
    )
    assert sorted(lines[1:]) == sorted(f"created: {path}" for path in library)
    assert stderr == ""


def test_records_a_cli_job_and_publishes_its_events(library):
    recorder = EventRecorder()
    try:
        run("--no-progress")
        statuses = [event["status"] for event in job_events(recorder.events())]
    finally:
        recorder.close()
    job = BackgroundJob.objects.get()
    assert (job.kind, job.status, job.created_via) == ("scan", "succeeded", "cli")
    assert statuses[0] == "pending"
    assert statuses[1] == "running"
    assert statuses[-1] == "succeeded"


def test_unchanged_rescan_lists_nothing(library):
    run("--no-progress")
    code, stdout, _stderr = run("--no-progress")
    assert code == 0
    assert stdout.splitlines()[0].startswith(
        "Scanned 2 files in 1 folder: 0 created, 0 updated, 0 changed, 2 unchanged, 0 moved, 0 duplicates, "
        "0 missing, 0 excluded, 0 errors; hashed 0 files (0 B) in "
    )
    assert len(stdout.splitlines()) == 1


def test_json_prints_the_report_instead(library, lora_dir):
    code, stdout, _stderr = run("--json", "--no-progress")
    report = json.loads(stdout)
    assert code == 0
    assert report == BackgroundJob.objects.get().result
    assert report["roots"] == [str(lora_dir)]
    assert (report["created"], len(report["items"]), report["items_truncated"]) == (2, 2, False)


def test_paths_limit_the_scan(library, lora_dir):
    code, stdout, _stderr = run("--json", "--no-progress", str(lora_dir / "anime"))
    report = json.loads(stdout)
    assert code == 0
    assert report["roots"] == [str(lora_dir / "anime")]
    assert [item["path"] for item in report["items"]] == [str(library[0])]


def test_relative_paths_are_taken_from_the_working_directory(library, lora_dir, monkeypatch):
    monkeypatch.chdir(lora_dir)
    code, stdout, _stderr = run("--json", "--no-progress", "anime")
    assert code == 0
    assert json.loads(stdout)["roots"] == [str(lora_dir / "anime")]


def test_dry_run_writes_nothing(library):
    code, stdout, stderr = run("--dry-run", "--no-progress")
    assert code == 0
    assert "2 created" in stdout.splitlines()[0]
    assert stderr.strip() == "Dry run: nothing was written."
    assert not Adapter.objects.exists()
    assert not ScannedFile.objects.exists()
    assert BackgroundJob.objects.get().result["dry_run"] is True


def test_per_item_errors_exit_2(library, monkeypatch):
    # Tests run as root, which reads a chmod 000 file anyway: the read error is simulated at the engine's reader.
    from adapters.scanner import engine

    real_read = engine.read_model_file

    def read(path, **kwargs):
        if Path(path).name == "ink.safetensors":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_read(path, **kwargs)

    monkeypatch.setattr(engine, "read_model_file", read)
    code, stdout, _stderr = run("--no-progress")
    assert code == 2
    assert "1 created" in stdout.splitlines()[0]
    assert "1 errors" in stdout.splitlines()[0]
    assert f"error: {library[1]} (" in stdout
    assert BackgroundJob.objects.get().status == "succeeded"


def test_a_path_outside_the_lora_folders_exits_1(library, tmp_path):
    code, stdout, stderr = run("--no-progress", str(tmp_path))
    assert (code, stdout) == (1, "")
    assert stderr.strip() == f"{tmp_path} is not inside LORAFORGE_LORA_DIRS"
    assert not BackgroundJob.objects.exists()


def test_a_running_scan_exits_1(library):
    running = BackgroundJob.objects.create(kind="scan", status="running")
    code, stdout, stderr = run("--no-progress")
    assert (code, stdout) == (1, "")
    assert stderr.strip() == f"A scan is already running (job {running.pk})"
    assert BackgroundJob.objects.count() == 1


def test_a_failed_scan_exits_1_with_its_error(library, monkeypatch):
    def explode(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("adapters.scanner.engine.library_scan", explode)
    code, _stdout, stderr = run("--no-progress")
    assert code == 1
    assert stderr.strip() == "Scan failed: disk on fire"


def test_workers_and_flags_reach_the_scan(library, monkeypatch):
    seen = {}
    from adapters.scanner import engine

    real_scan = engine.library_scan

    def spy(*, options, progress=None):
        seen["options"] = options
        return real_scan(options=options, progress=progress)

    monkeypatch.setattr(engine, "library_scan", spy)
    code, _stdout, _stderr = run("--workers", "2", "--force-rehash", "--include-excluded", "--no-progress")
    assert code == 0
    options = seen["options"]
    assert (options.workers, options.force_rehash, options.include_excluded) == (2, True, True)


def test_embeddings_follow_the_import_unless_disabled(library):
    heard = []

    def receiver(sender, adapter_ids, **kwargs):
        heard.append(len(adapter_ids))

    adapters_imported.connect(receiver)
    try:
        run("--no-progress", "--no-embeddings")
        assert heard == []
        Adapter.objects.all().delete()
        ScannedFile.objects.all().delete()
        run("--no-progress")
        assert heard == [2]
    finally:
        adapters_imported.disconnect(receiver)


def test_progress_bar_is_off_when_stderr_is_not_a_terminal(library):
    _code, _stdout, stderr = run()
    assert stderr == ""


@pytest.mark.parametrize("workers", ["0", "33", "two"])
def test_bad_worker_count_is_a_usage_error_exit_1(tmp_path, workers):
    result = manage_command("import_loras", "--workers", workers, tmp_path=tmp_path)
    assert result.returncode == 1
    assert "--workers" in result.stderr
