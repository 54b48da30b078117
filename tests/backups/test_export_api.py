"""``POST /export/estimate`` and ``POST /export`` (SPEC 5.9): ExportConfig validation, the estimate, the stream."""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from pathlib import Path

import pytest

from backups.archive import format as fmt
from backups.archive.estimate import archive_estimate, format_duration, format_size
from backups.archive.format import ArchiveOptions
from tests.backups import library as fixtures
from tests.backups.library import Library, jsonl_records, read_archive, verify_members

library, media = fixtures.library, fixtures.media
ESTIMATE = "/api/v1/export/estimate"
EXPORT = "/api/v1/export"


def errors_of(response) -> dict:
    assert response.status_code == 400, response.content[:500]
    return response.json()["errors"]


# --- formatting ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 Bytes"), (-5, "0 Bytes"), (1, "1 Bytes"), (1023, "1023 Bytes"), (1024, "1.00 KB"),
        (1572864, "1.50 MB"), (1024**3 * 3, "3.00 GB"), (1024**4 * 2.5, "2.50 TB"), (1024**5, "1024.00 TB"),
    ],
)  # fmt: skip
def test_format_size(size, text):
    assert format_size(size) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 seconds"), (-1, "0 seconds"), (0.03, "1 second"), (1, "1 second"), (1.2, "2 seconds"),
        (59.5, "60 seconds"), (60, "1 minute"), (61, "2 minutes"), (600, "10 minutes"),
    ],
)  # fmt: skip
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


# --- estimate ---------------------------------------------------------------------------------------------


def test_estimate_counts_and_formats(api, library: Library):
    response = api.post(ESTIMATE, {"lora_files": True}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"size", "time", "size_bytes", "time_seconds", "counts"}
    assert body["counts"] == {
        "adapters": 3, "lora_files": 3, "embeddings": 0, "generation_jobs": 0, "generation_results": 0,
        "resource_samples": 0,
    }  # fmt: skip
    assert body["size"] == format_size(body["size_bytes"])
    assert body["time"] == format_duration(body["size_bytes"] / (50 * 1024 * 1024))
    assert body["time_seconds"] == pytest.approx(body["size_bytes"] / (50 * 1024 * 1024), abs=0.01)


def test_estimate_uses_real_file_sizes(api, library: Library, lora_dir: Path):
    without = api.post(ESTIMATE, {}, format="json").json()["size_bytes"]
    with_files = api.post(ESTIMATE, {"lora_files": True}, format="json").json()["size_bytes"]
    file_bytes = sum(path.stat().st_size for path in library.files.values())
    assert with_files - without >= file_bytes
    big = lora_dir / "plain.safetensors"
    big.write_bytes(b"\0" * 3_000_000)  # the file grew on disk: the estimate follows stat, not the row
    grown = api.post(ESTIMATE, {"lora_files": True}, format="json").json()["size_bytes"]
    assert grown - with_files == 3_000_000 - file_bytes + sum(
        path.stat().st_size for key, path in library.files.items() if path != big
    )


def test_estimate_is_an_upper_bound_close_to_the_uncompressed_archive(library: Library):
    options = ArchiveOptions(
        lora_files=True, lora_embeddings=True, generations=True, user_data=True, system_config=True, analytics=True,
        compression="none",
    )  # fmt: skip
    from backups.archive.build import archive_write

    target = io.BytesIO()
    archive_write(target, options, kind="export")
    estimate = archive_estimate(options)
    actual = len(target.getvalue())
    assert actual * 0.8 <= estimate.size_bytes <= actual * 1.5


def test_estimate_counts_generations_in_the_date_range(api, library: Library):
    body = {"generations": True, "generation_range": "date_range", "date_from": "2025-01-01", "date_to": "2025-12-31"}
    counts = api.post(ESTIMATE, body, format="json").json()["counts"]
    assert (counts["generation_jobs"], counts["generation_results"]) == (1, 2)


# --- validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ({"format": "tar"}, "format", "Only ZIP exports are supported"),
        ({"format": "x" * 100}, "format", "Only ZIP exports are supported"),
        ({"password": "p" * 5000}, "password", "Encrypted archives are not supported"),
        ({"split_archives": True}, "split_archives", "Split archives are not supported"),
        ({"encrypt": True}, "encrypt", "Encrypted archives are not supported"),
        ({"password": "hunter2"}, "password", "Encrypted archives are not supported"),
        ({"max_size_mb": 0}, "max_size_mb", None),
        ({"max_size_mb": 1_048_577}, "max_size_mb", None),
        ({"max_size_mb": 5.5}, "max_size_mb", "A valid integer is required."),
        ({"loras": "yes"}, "loras", "Must be a boolean (true or false)."),
        ({"compression": "ultra"}, "compression", "compression must be one of: none, fast, balanced, max"),
        ({"generation_range": "week"}, "generation_range", None),
        ({"generation_range": "date_range", "date_from": "2025-01-01"}, "date_to", "This field is required."),
        ({"generation_range": "date_range", "date_to": "2025-01-01"}, "date_from", "This field is required."),
        ({"date_from": "yesterday"}, "date_from", "Enter an ISO 8601 datetime or a YYYY-MM-DD date."),
        ({"adapter_ids": ["not-a-uuid"]}, "adapter_ids.0", None),
        ({"unknown": 1}, "unknown", "Unknown field."),
        (
            {"loras": False, "lora_embeddings": False, "generations": False, "user_data": False,
             "system_config": False, "analytics": False, "lora_files": True},
            "non_field_errors", "Nothing to export",
        ),
    ],
)  # fmt: skip
@pytest.mark.parametrize("path", [ESTIMATE, EXPORT])
def test_invalid_config_is_400(api, db, path, body, key, message):
    errors = errors_of(api.post(path, body, format="json"))
    assert key in errors, errors
    if message is not None:
        assert errors[key] == [message]


def test_export_over_max_size_is_400(api, library: Library, lora_dir: Path):
    (lora_dir / "plain.safetensors").write_bytes(b"\0" * (2 * 1024 * 1024))
    errors = errors_of(api.post(EXPORT, {"lora_files": True, "max_size_mb": 1}, format="json"))
    assert errors == {"max_size_mb": ["Estimated archive size exceeds max_size_mb"]}


def test_not_json_is_415(api, db):
    response = api.post(EXPORT, "loras=true", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


# --- the download -----------------------------------------------------------------------------------------


def test_export_streams_a_verified_zip_without_content_length(api, library: Library):
    response = api.post(EXPORT + "/", {"lora_files": True, "generations": True}, format="json")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/zip"
    assert not response.has_header("Content-Length")
    assert re.fullmatch(r'attachment; filename="loraforge_export_\d{8}_\d{6}\.zip"', response["Content-Disposition"])
    archive, manifest = read_archive(b"".join(response.streaming_content))
    verify_members(archive, manifest)
    assert manifest["counts"]["lora_files"] == 3
    assert len(jsonl_records(archive, fmt.JOBS)) == 2


@pytest.mark.parametrize("body", [{"format": "ZIP", "password": "", "encrypt": False}, {"password": None}])
def test_harmless_values_are_accepted(api, library: Library, body):
    assert api.post(EXPORT, body, format="json").status_code == 200


def test_export_defaults_with_an_empty_body(api, library: Library):
    response = api.post(EXPORT, format="json")
    assert response.status_code == 200
    _archive, manifest = read_archive(b"".join(response.streaming_content))
    assert manifest["counts"]["adapters"] == 3
    assert manifest["options"]["lora_files"] is False


def test_export_adapter_ids(api, library: Library):
    chosen = str(library.adapters[0].pk)
    response = api.post(EXPORT, {"adapter_ids": [chosen], "lora_embeddings": True}, format="json")
    _archive, manifest = read_archive(b"".join(response.streaming_content))
    assert manifest["options"]["adapter_ids"] == [chosen]
    assert (manifest["counts"]["adapters"], manifest["counts"]["embeddings"]) == (1, 1)


def test_export_of_no_adapter_ids_is_an_archive_without_adapters(api, library: Library):
    """Found by the schema fuzzer: ``pk IN ()`` compiles to no query at all, and the stream broke mid-response."""
    response = api.post(EXPORT, {"adapter_ids": [], "lora_embeddings": True, "generations": True}, format="json")
    archive, manifest = read_archive(b"".join(response.streaming_content))
    verify_members(archive, manifest)
    assert (manifest["counts"]["adapters"], manifest["counts"]["embeddings"]) == (0, 0)
    assert manifest["counts"]["generation_jobs"] == 2


def test_read_only_key_may_not_export(read_only_key, db):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_X_API_KEY=read_only_key)
    for path in (EXPORT, ESTIMATE):
        response = client.post(path, {}, format="json")
        assert response.status_code == 403
        assert response.json()["detail"] == "This API key is read-only"


def test_anonymous_is_401(anon, db):
    assert anon.post(EXPORT, {}, format="json").status_code == 401
    assert anon.post("/v1/export/estimate/", {}, format="json").status_code == 401


def test_get_is_405(api, db):
    response = api.get(EXPORT)
    assert response.status_code == 405
    assert response["Allow"].startswith("POST")


@pytest.mark.parametrize(("compression", "stored"), [("none", True), ("fast", False), ("max", False)])
def test_compression_applies_to_json_members_only(api, library: Library, compression, stored):
    body = {"compression": compression, "lora_files": True, "user_data": True}
    archive, _manifest = read_archive(b"".join(api.post(EXPORT, body, format="json").streaming_content))
    for info in archive.infolist():
        if info.filename.endswith((".json", ".jsonl")):
            assert (info.compress_type == zipfile.ZIP_STORED) is stored, info.filename
        else:
            assert info.compress_type == zipfile.ZIP_STORED, info.filename


def test_export_date_range_through_the_api(api, library: Library):
    body = {
        "loras": False, "generations": True, "generation_range": "date_range",
        "date_from": "2025-03-01T00:00:00+02:00", "date_to": "2025-03-01",
    }  # fmt: skip
    archive, manifest = read_archive(b"".join(api.post(EXPORT, body, format="json").streaming_content))
    assert [record["id"] for record in jsonl_records(archive, fmt.JOBS)] == [str(library.jobs[1].pk)]
    assert manifest["options"]["date_from"] == "2025-02-28T22:00:00+00:00"
    assert manifest["options"]["date_to"].startswith("2025-03-01T23:59:59.999999")


def test_date_range_is_ignored_with_all(api, library: Library):
    body = {"loras": False, "generations": True, "date_from": "2025-03-01", "date_to": "2025-03-01"}
    archive, manifest = read_archive(b"".join(api.post(EXPORT, body, format="json").streaming_content))
    assert len(jsonl_records(archive, fmt.JOBS)) == 2
    assert manifest["options"]["date_from"] is None


def test_too_many_adapter_ids_is_400(api, db):
    ids = [str(uuid.uuid4()) for _ in range(201)]
    assert "adapter_ids" in errors_of(api.post(EXPORT, {"adapter_ids": ids}, format="json"))
