"""``manage.py export_library`` (SPEC 8): the archive, its summary line, the exit codes."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from django.core.management import call_command

from backups.archive import format as fmt
from tests.backups import library as fixtures
from tests.backups.library import Library, jsonl_records, read_archive, verify_members

library, media = fixtures.library, fixtures.media


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("export_library", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_default_export_prints_path_size_and_counts(library: Library, tmp_path: Path):
    output = tmp_path / "library.zip"
    code, out, err = run(str(output), "--no-progress")
    assert (code, err) == (0, "")
    size = output.stat().st_size
    match = re.fullmatch(r"Exported (\S+) \((.+)\): (.+)\n", out)
    assert match is not None, out
    assert match.group(1) == str(output)
    from backups.archive.build import format_size

    assert match.group(2) == format_size(size)
    assert match.group(3).startswith("3 adapters, 0 lora_files, 2 sidecars, 1 previews, 0 embeddings")
    archive, manifest = read_archive(output)
    verify_members(archive, manifest)
    assert not list(tmp_path.glob("*.part"))


def test_flags_select_the_parts(library: Library, tmp_path: Path):
    output = tmp_path / "all.zip"
    flags = ["--files", "--embeddings", "--generations", "--user-data", "--system-config", "--analytics"]
    code, _out, _err = run(str(output), *flags)
    assert code == 0
    archive, manifest = read_archive(output)
    assert manifest["counts"]["lora_files"] == 3
    assert manifest["counts"]["embeddings"] == 2
    assert len(jsonl_records(archive, fmt.JOBS)) == 2
    assert {fmt.SESSIONS, fmt.FEEDBACK, fmt.PREFERENCES, fmt.RESOURCE_SAMPLES, fmt.BACKENDS} <= set(archive.namelist())
    assert "secret-pw" not in archive.read(fmt.BACKENDS).decode()


def test_no_metadata_and_adapter_filter(library: Library, tmp_path: Path):
    output = tmp_path / "one.zip"
    chosen = library.adapters[0]
    code, _out, _err = run(str(output), "--no-metadata", "--adapter", str(chosen.pk), "--adapter", str(chosen.pk))
    assert code == 0
    archive, manifest = read_archive(output)
    assert manifest["counts"]["adapters"] == 1
    assert not [name for name in archive.namelist() if "/sidecars/" in name or "/preview." in name]
    assert json.loads(archive.read(fmt.adapter_record_member(chosen.pk)))["name"] == "celestial"


def test_output_folder_gets_a_dated_name(library: Library, tmp_path: Path):
    code, out, _err = run(str(tmp_path))
    assert code == 0
    written = list(tmp_path.glob("loraforge_export_*.zip"))
    assert len(written) == 1
    assert str(written[0]) in out


def test_unknown_adapter_is_fatal(library: Library, tmp_path: Path):
    output = tmp_path / "x.zip"
    code, out, err = run(str(output), "--adapter", "00000000-0000-0000-0000-000000000000", "--adapter", "nope")
    assert code == 1
    assert err.strip() == "Unknown adapter ids: nope, 00000000-0000-0000-0000-000000000000"
    assert out == ""
    assert not output.exists()


def test_missing_folder_is_fatal(db, tmp_path: Path):
    code, _out, err = run(str(tmp_path / "absent" / "x.zip"))
    assert code == 1
    assert err.strip() == f"Folder does not exist: {tmp_path / 'absent'}"


def test_missing_lora_file_exits_2_with_the_archive_written(library: Library, tmp_path: Path):
    missing = library.adapters[1]
    Path(missing.file_path).unlink()
    output = tmp_path / "partial.zip"
    code, out, err = run(str(output), "--files")
    assert code == 2
    assert out.startswith(f"Exported {output} ")
    assert err.strip() == f"File not available: {missing.file_path}"
    _archive, manifest = read_archive(output)
    assert manifest["counts"]["lora_files"] == 2


def test_write_failure_leaves_nothing(library: Library, tmp_path: Path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("backups.services.exports.archive_write", fail)
    output = tmp_path / "full.zip"
    code, _out, err = run(str(output))
    assert code == 1
    assert err.strip() == f"Could not write {output}: No space left on device"
    assert not list(tmp_path.glob("full*"))


def test_usage_error_exits_1(tmp_path: Path):
    from tests.processes import manage_command

    completed = manage_command("export_library", tmp_path=tmp_path)
    assert completed.returncode == 1
    assert "the following arguments are required: OUTPUT" in completed.stderr
