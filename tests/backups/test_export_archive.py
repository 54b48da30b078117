"""The archive writer and the parts of an export (SPEC 6.10.1, 5.9): members, records, checksums, options."""

from __future__ import annotations

import base64
import io
import json
import struct
import zipfile
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from backups.archive import format as fmt
from backups.archive.build import archive_stream, archive_write
from backups.archive.format import ArchiveOptions
from backups.archive.progress import ArchiveCancelled
from backups.archive.writer import ArchiveWriter, ChunkSink
from tests.backups import library as fixtures
from tests.backups.library import Library, jsonl_records, read_archive, verify_members

library, media = fixtures.library, fixtures.media

EVERYTHING = ArchiveOptions(
    loras=True, lora_files=True, lora_metadata=True, lora_embeddings=True, generations=True, user_data=True,
    system_config=True, analytics=True,
)  # fmt: skip


def written(options: ArchiveOptions, **kwargs) -> tuple[zipfile.ZipFile, dict]:
    target = io.BytesIO()
    archive_write(target, options, kind=kwargs.pop("kind", "export"), **kwargs)
    return read_archive(target.getvalue())


class Recorder:
    def __init__(self, cancel_after: int | None = None) -> None:
        self.planned_calls: list[int] = []
        self.advanced: list[tuple[int, str]] = []
        self.cancel_after = cancel_after

    def planned(self, total_bytes: int) -> None:
        self.planned_calls.append(total_bytes)

    def advance(self, nbytes: int, member: str) -> None:
        self.advanced.append((nbytes, member))

    def cancelled(self) -> bool:
        return self.cancel_after is not None and len(self.advanced) >= self.cancel_after


def test_every_member_is_listed_with_its_real_size_and_sha256(library: Library):
    archive, manifest = written(EVERYTHING)
    verify_members(archive, manifest)
    assert (manifest["format"], manifest["format_version"], manifest["kind"]) == ("loraforge-archive", 1, "export")
    assert manifest["backup_type"] is None
    assert manifest["created_at"].endswith("Z")
    assert manifest["counts"] == {
        "adapters": 3, "lora_files": 3, "sidecars": 2, "previews": 1, "embeddings": 2, "generation_jobs": 2,
        "generation_results": 3, "images": 3, "sessions": 1, "feedback": 1, "preferences": 1, "resource_samples": 1,
        "backends": 1,
    }  # fmt: skip
    assert manifest["options"] == EVERYTHING.manifest_options()


def test_adapter_record_names_its_file_sidecars_and_preview(library: Library):
    archive, _manifest = written(EVERYTHING)
    adapter = library.adapters[0]
    record = json.loads(archive.read(fmt.adapter_record_member(adapter.pk)))
    assert record["id"] == str(adapter.pk)
    assert record["tags"] == ["anime", "celestial"]
    assert record["locked_fields"] == ["name"]
    assert record["header_metadata"] == {"ss_network_dim": "32"}
    assert not {"tag_index", "search_index", "has_duplicates"} & set(record)
    assert record["file_member"] == f"adapters/{adapter.pk}/files/celestial.safetensors"
    assert archive.read(record["file_member"]) == Path(adapter.file_path).read_bytes()
    assert record["sidecar_members"] == [
        {"member": f"adapters/{adapter.pk}/sidecars/celestial.civitai.info", "name": "celestial.civitai.info"}
    ]
    assert record["preview_member"] == f"adapters/{adapter.pk}/preview.png"
    assert archive.read(record["preview_member"]) == Path(str(adapter.preview_path)).read_bytes()


def test_model_and_image_files_are_stored_and_json_deflated(library: Library):
    archive, _manifest = written(EVERYTHING)
    for info in archive.infolist():
        stored = "/files/" in info.filename or info.filename.startswith("generations/images/")
        stored = stored or "/preview." in info.filename or "/sidecars/" in info.filename
        expected = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
        assert info.compress_type == expected, info.filename


def test_compression_none_stores_json_members(library: Library):
    archive, _manifest = written(ArchiveOptions(compression="none", user_data=True))
    assert {info.compress_type for info in archive.infolist() if info.filename != fmt.MANIFEST} == {zipfile.ZIP_STORED}


def test_defaults_hold_records_and_metadata_without_model_files(library: Library):
    archive, manifest = written(ArchiveOptions())
    names = set(archive.namelist())
    assert not [name for name in names if "/files/" in name]
    assert manifest["counts"]["lora_files"] == 0
    assert manifest["counts"]["sidecars"] == 2
    for adapter in library.adapters:
        assert json.loads(archive.read(fmt.adapter_record_member(adapter.pk)))["file_member"] is None
    assert not {fmt.EMBEDDINGS, fmt.JOBS, fmt.RESULTS, fmt.SESSIONS, fmt.BACKENDS, fmt.RESOURCE_SAMPLES} & names


def test_without_metadata_no_sidecars_or_previews(library: Library):
    archive, manifest = written(ArchiveOptions(lora_metadata=False))
    assert not [name for name in archive.namelist() if "/sidecars/" in name or "/preview." in name]
    record = json.loads(archive.read(fmt.adapter_record_member(library.adapters[0].pk)))
    assert (record["sidecar_members"], record["preview_member"]) == ([], None)
    assert (manifest["counts"]["sidecars"], manifest["counts"]["previews"]) == (0, 0)


def test_without_previews_sidecars_stay(library: Library):
    archive, manifest = written(ArchiveOptions(lora_previews=False))
    assert not [name for name in archive.namelist() if "/preview." in name]
    assert (manifest["counts"]["sidecars"], manifest["counts"]["previews"]) == (2, 0)


def test_loras_false_leaves_adapters_out(library: Library):
    archive, manifest = written(ArchiveOptions(loras=False, lora_files=True, user_data=True))
    assert not [name for name in archive.namelist() if name.startswith("adapters/")]
    assert manifest["counts"]["adapters"] == 0


def test_adapter_ids_restrict_adapters_and_embeddings(library: Library):
    chosen = library.adapters[1]
    archive, manifest = written(ArchiveOptions(lora_files=True, lora_embeddings=True, adapter_ids=(str(chosen.pk),)))
    assert {name.split("/")[1] for name in archive.namelist() if name.startswith("adapters/")} == {str(chosen.pk)}
    assert [record["adapter_id"] for record in jsonl_records(archive, fmt.EMBEDDINGS)] == [str(chosen.pk)]
    assert (manifest["counts"]["adapters"], manifest["counts"]["embeddings"]) == (1, 1)


def test_embedding_vector_is_base64_float32(library: Library):
    archive, _manifest = written(ArchiveOptions(loras=False, lora_embeddings=True))
    records = {record["adapter_id"]: record for record in jsonl_records(archive, fmt.EMBEDDINGS)}
    record = records[str(library.adapters[0].pk)]
    assert "vector" not in record
    vector = np.frombuffer(base64.b64decode(record["vector_b64"]), dtype="<f4")
    assert vector.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert (record["model_name"], record["dim"], record["text_sha256"]) == ("all-MiniLM-L6-v2", 4, "a" * 64)


def test_generations_hold_jobs_with_links_results_and_images(library: Library):
    archive, _manifest = written(ArchiveOptions(loras=False, generations=True))
    jobs = {record["id"]: record for record in jsonl_records(archive, fmt.JOBS)}
    new = library.jobs[1]
    links = jobs[str(new.pk)]["adapter_links"]
    assert [(link["adapter_id"], link["weight"], link["position"]) for link in links] == [
        (str(library.adapters[1].pk), 1.0, 0), (str(library.adapters[0].pk), 0.5, 1),
    ]  # fmt: skip
    assert not {"id", "job_id"} & set(links[0])
    results = jsonl_records(archive, fmt.RESULTS)
    assert len(results) == 3
    for record in results:
        assert record["member"] == f"generations/images/{record['job_id']}/{record['index']:03d}.png"
        assert archive.read(record["member"])[:8] == b"\x89PNG\r\n\x1a\n"


def test_generation_images_false_leaves_images_out(library: Library):
    archive, manifest = written(ArchiveOptions(loras=False, generations=True, generation_images=False))
    assert not [name for name in archive.namelist() if name.startswith("generations/images/")]
    assert {record["member"] for record in jsonl_records(archive, fmt.RESULTS)} == {None}
    assert manifest["counts"]["images"] == 0


def test_missing_image_file_has_no_member(library: Library, media: Path):
    (media / library.results[0].file).unlink()
    archive, manifest = written(ArchiveOptions(loras=False, generations=True))
    members = {record["id"]: record["member"] for record in jsonl_records(archive, fmt.RESULTS)}
    assert members[str(library.results[0].pk)] is None
    assert manifest["counts"]["images"] == 2


@pytest.mark.parametrize(
    ("date_from", "date_to", "expected"),
    [(date(2025, 1, 1), date(2025, 12, 31), [1]), (date(2024, 1, 10), date(2024, 1, 10), [0]), (None, None, [0, 1])],
)
def test_date_range_selects_jobs_and_their_results(library: Library, date_from, date_to, expected):
    options = ArchiveOptions(loras=False, generations=True, date_from=date_from, date_to=date_to)
    archive, manifest = written(options)
    assert {record["id"] for record in jsonl_records(archive, fmt.JOBS)} == {str(library.jobs[i].pk) for i in expected}
    job_ids = {record["job_id"] for record in jsonl_records(archive, fmt.RESULTS)}
    assert job_ids == {str(library.jobs[i].pk) for i in expected}
    images = {name.split("/")[2] for name in archive.namelist() if name.startswith("generations/images/")}
    assert images == job_ids
    assert manifest["counts"]["generation_jobs"] == len(expected)


def test_user_data_analytics_and_backends_without_passwords(library: Library):
    archive, _manifest = written(ArchiveOptions(loras=False, user_data=True, analytics=True, system_config=True))
    assert jsonl_records(archive, fmt.SESSIONS)[0]["target_adapter_id"] == str(library.adapters[0].pk)
    assert jsonl_records(archive, fmt.FEEDBACK)[0]["feedback_type"] == "positive"
    assert jsonl_records(archive, fmt.PREFERENCES)[0]["preference_value"] == "anime"
    sample = jsonl_records(archive, fmt.RESOURCE_SAMPLES)[0]
    assert "id" not in sample
    assert sample["host"] == "host-1"
    backends = json.loads(archive.read(fmt.BACKENDS))
    assert [backend["name"] for backend in backends] == ["studio"]
    assert not {"password", "lease_job", "lease_expires_at"} & set(backends[0])
    assert b"secret-pw" not in b"".join(archive.read(name) for name in archive.namelist())


def test_missing_lora_file_is_left_out_with_a_warning(library: Library):
    missing = library.adapters[2]
    Path(missing.file_path).unlink()
    target = io.BytesIO()
    manifest = archive_write(target, ArchiveOptions(lora_files=True), kind="export")
    archive, stored = read_archive(target.getvalue())
    assert json.loads(archive.read(fmt.adapter_record_member(missing.pk)))["file_member"] is None
    assert stored["counts"]["lora_files"] == 2
    assert manifest.warnings == [f"File not available: {missing.file_path}"]


def test_file_outside_the_lora_folders_is_never_copied(library: Library, tmp_path: Path):
    outside = tmp_path / "secret.safetensors"
    outside.write_bytes(b"not to be exported")
    adapter = library.adapters[0]
    type(adapter).objects.filter(pk=adapter.pk).update(file_path=str(outside), preview_path=str(outside))
    archive, _manifest = written(ArchiveOptions(lora_files=True))
    assert b"not to be exported" not in b"".join(archive.read(name) for name in archive.namelist())


def test_backup_kind_is_recorded(library: Library):
    _archive, manifest = written(ArchiveOptions.for_backup("metadata_only"), kind="backup", backup_type="metadata_only")
    assert (manifest["kind"], manifest["backup_type"]) == ("backup", "metadata_only")
    assert manifest["counts"]["images"] == manifest["counts"]["previews"] == manifest["counts"]["lora_files"] == 0


def test_progress_plans_once_and_advances_over_every_member_byte(library: Library):
    recorder = Recorder()
    target = io.BytesIO()
    manifest = archive_write(target, EVERYTHING, kind="export", progress=recorder)
    assert len(recorder.planned_calls) == 1
    assert recorder.planned_calls[0] >= manifest.total_bytes
    assert sum(nbytes for nbytes, _member in recorder.advanced) == manifest.total_bytes


def test_cancel_stops_between_chunks(library: Library):
    recorder = Recorder(cancel_after=2)
    with pytest.raises(ArchiveCancelled):
        archive_write(io.BytesIO(), EVERYTHING, kind="backup", progress=recorder)
    assert len(recorder.advanced) == 2


def test_stream_is_the_same_archive_with_data_descriptors(library: Library):
    chunks = list(archive_stream(EVERYTHING))
    archive, manifest = read_archive(b"".join(chunks))
    verify_members(archive, manifest)
    assert all(info.flag_bits & 0x08 for info in archive.infolist())  # sizes follow the data: nothing seeked back
    assert manifest["counts"]["lora_files"] == 3


def test_stream_chunks_stay_small(library: Library, lora_dir: Path):
    big = lora_dir / "big.safetensors"
    big.write_bytes(b"\x01" * (5 * 1024 * 1024))
    adapter = library.adapters[2]
    type(adapter).objects.filter(pk=adapter.pk).update(file_path=str(big))
    sizes = [len(chunk) for chunk in archive_stream(ArchiveOptions(lora_files=True))]
    assert sum(sizes) > 5 * 1024 * 1024
    assert max(sizes) <= 1024 * 1024 + 4096


# --- the writer's ZIP64 decision ---------------------------------------------------------------------------


def _local_header_extra(data: bytes, info: zipfile.ZipInfo) -> bytes:
    offset = info.header_offset
    name_length, extra_length = struct.unpack("<HH", data[offset + 26 : offset + 30])
    start = offset + 30 + name_length
    return data[start : start + extra_length]


def test_file_larger_than_2_gib_gets_zip64_headers():
    target = io.BytesIO()
    writer = ArchiveWriter(target, compresslevel=6)
    declared = 5 * 1024**3  # what fstat says: zipfile decides ZIP64 from it before writing a byte
    list(writer.write_file("adapters/x/files/huge.safetensors", io.BytesIO(b"abc"), declared))
    list(writer.write_file("adapters/x/files/small.safetensors", io.BytesIO(b"abc"), 3))
    writer.close({"members": []})
    data = target.getvalue()
    archive = zipfile.ZipFile(io.BytesIO(data))
    huge = archive.getinfo("adapters/x/files/huge.safetensors")
    small = archive.getinfo("adapters/x/files/small.safetensors")
    assert _local_header_extra(data, huge)[:2] == b"\x01\x00"  # ZIP64 extended information
    assert _local_header_extra(data, small)[:2] != b"\x01\x00"
    assert archive.read(huge.filename) == b"abc"


def test_json_lines_members_are_zip64_on_a_stream():
    sink = ChunkSink()
    writer = ArchiveWriter(sink, compresslevel=6)
    with writer.member("generations/jobs.jsonl", compressed=True) as stream:
        stream.write(b'{"a":1}\n')
    writer.close({"members": []})
    data = sink.drain()
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("generations/jobs.jsonl")
    assert _local_header_extra(data, info)[:2] == b"\x01\x00"
    assert writer.members[0].size == 8


def test_duplicate_member_is_refused():
    writer = ArchiveWriter(io.BytesIO(), compresslevel=0)
    writer.write_bytes("config/backends.json", b"[]")
    with pytest.raises(ValueError, match="Duplicate"):
        writer.write_bytes("config/backends.json", b"[]")


def test_symlinks_escaping_the_lora_folders_are_never_followed(library: Library, lora_dir: Path, tmp_path: Path):
    secret = tmp_path / "outside" / "secret.civitai.info"
    secret.parent.mkdir()
    secret.write_text("not to be exported")
    (lora_dir / "escape.civitai.info").symlink_to(secret)
    (lora_dir / "linked_folder").symlink_to(secret.parent, target_is_directory=True)
    adapter = library.adapters[2]
    sidecars = [{"kind": "civitai_info", "path": str(lora_dir / "escape.civitai.info"), "mtime": None, "size": 1}]
    type(adapter).objects.filter(pk=adapter.pk).update(
        sidecars=sidecars, json_file_path=str(lora_dir / "linked_folder" / "secret.civitai.info")
    )
    archive, manifest = written(ArchiveOptions())
    assert b"not to be exported" not in b"".join(archive.read(name) for name in archive.namelist())
    assert json.loads(archive.read(fmt.adapter_record_member(adapter.pk)))["sidecar_members"] == []
    assert manifest["counts"]["sidecars"] == 2


def test_symlink_inside_the_lora_folders_is_followed(library: Library, lora_dir: Path):
    real = lora_dir / "real.civitai.info"
    real.write_text('{"inside": true}')
    (lora_dir / "alias.civitai.info").symlink_to(real)
    adapter = library.adapters[2]
    sidecars = [{"kind": "civitai_info", "path": str(lora_dir / "alias.civitai.info"), "mtime": None, "size": 1}]
    type(adapter).objects.filter(pk=adapter.pk).update(sidecars=sidecars)
    archive, _manifest = written(ArchiveOptions())
    record = json.loads(archive.read(fmt.adapter_record_member(adapter.pk)))
    assert [item["name"] for item in record["sidecar_members"]] == ["alias.civitai.info"]
    assert archive.read(record["sidecar_members"][0]["member"]) == b'{"inside": true}'
