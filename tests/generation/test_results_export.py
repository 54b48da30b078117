"""``POST /generation/results/export`` (SPEC 5.5.4): a streamed ZIP with a checksummed manifest."""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
import zipfile

import pytest

from tests.generation.factories import GenerationJobFactory, GenerationResultFactory, png_bytes
from tests.generation.test_results_api import field_error, problem

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

URL = "/api/v1/generation/results/export"
FILENAME = re.compile(r'^attachment; filename="generation-results-\d{8}-\d{6}\.zip"$')


def export(client, body) -> object:
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def archive_of(response) -> zipfile.ZipFile:
    assert response.status_code == 200, response
    assert response.streaming
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_export_is_a_zip_attachment(api):
    result = GenerationResultFactory()

    response = export(api, {"ids": [str(result.pk)]})

    assert response["Content-Type"] == "application/zip"
    assert FILENAME.match(response["Content-Disposition"]), response["Content-Disposition"]
    assert archive_of(response).testzip() is None


def test_archive_holds_images_metadata_and_a_manifest_with_checksums(api):
    job = GenerationJobFactory(prompt="a fox in snow")
    first = GenerationResultFactory(job=job, index=0)
    second = GenerationResultFactory(job=job, index=2)

    archive = archive_of(export(api, {"ids": [str(second.pk), str(first.pk)]}))

    assert sorted(archive.namelist()) == sorted(
        [
            "manifest.json",
            f"results/{first.pk}/000.png",
            f"results/{first.pk}/metadata.json",
            f"results/{second.pk}/002.png",
            f"results/{second.pk}/metadata.json",
        ]
    )
    assert archive.read(f"results/{first.pk}/000.png") == png_bytes()
    manifest = json.loads(archive.read("manifest.json"))
    assert (manifest["format"], manifest["format_version"], manifest["count"]) == ("loraforge-results", 1, 2)
    assert manifest["generated_at"].endswith("Z")
    assert [entry["id"] for entry in manifest["results"]] == [str(second.pk), str(first.pk)]
    entry = manifest["results"][0]
    assert (entry["job_id"], entry["prompt"]) == (str(job.pk), "a fox in snow")
    assert entry["created_at"].endswith("Z")
    for entry in manifest["results"]:
        for asset in entry["assets"]:
            data = archive.read(asset["archive_path"])
            assert asset["size"] == len(data)
            assert asset["sha256"] == hashlib.sha256(data).hexdigest()
    assert [asset["content_type"] for asset in manifest["results"][1]["assets"]] == ["image/png", "application/json"]


def test_metadata_is_the_result_with_its_job_params(api):
    result = GenerationResultFactory()

    archive = archive_of(export(api, {"ids": [str(result.pk)]}))

    metadata = json.loads(archive.read(f"results/{result.pk}/metadata.json"))
    detail = api.get(f"/api/v1/generation/results/{result.pk}").json()["result"]
    assert {key: value for key, value in metadata.items() if key != "params"} == detail
    assert metadata["params"] == result.job.params


def test_without_metadata_only_images_and_manifest(api):
    result = GenerationResultFactory()

    archive = archive_of(export(api, {"ids": [str(result.pk)], "include_metadata": False}))

    assert sorted(archive.namelist()) == ["manifest.json", f"results/{result.pk}/000.png"]


def test_unknown_ids_are_left_out_and_a_missing_file_has_no_image_asset(api):
    present = GenerationResultFactory()
    no_file = GenerationResultFactory(write_file=False)

    archive = archive_of(export(api, {"ids": [str(uuid.uuid4()), str(present.pk), str(no_file.pk)]}))

    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["count"] == 2
    assert [asset["archive_path"] for asset in manifest["results"][1]["assets"]] == [
        f"results/{no_file.pk}/metadata.json"
    ]


def test_no_existing_id_is_404(api):
    assert problem(export(api, {"ids": [str(uuid.uuid4())]}), 404)["detail"] == "No results found"


def test_results_of_deliveries_are_not_exported(api):
    result = GenerationResultFactory(job=GenerationJobFactory(kind="delivery", mode="cli"))

    assert problem(export(api, {"ids": [str(result.pk)]}), 404)["detail"] == "No results found"


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({}, "ids"),
        ({"ids": []}, "ids"),
        ({"ids": ["x"]}, "ids.0"),
        ({"ids": [str(uuid.uuid4())] * 1001}, "ids"),
        ({"ids": [str(uuid.uuid4())], "include_metadata": "yes"}, "include_metadata"),
        ({"ids": [str(uuid.uuid4())], "format": "tar"}, "format"),
    ],
)
def test_invalid_body_is_400(api, body, key):
    assert field_error(export(api, body), key)


def test_anonymous_is_401(anon):
    result = GenerationResultFactory()

    assert problem(export(anon, {"ids": [str(result.pk)]}), 401)["detail"] == "Authentication required"


def test_the_archive_is_produced_while_it_is_read(api, media_root):
    """The first bytes leave before the last image is read: a file removed meanwhile is simply not in it."""
    job = GenerationJobFactory()
    results = [GenerationResultFactory(job=job, index=index) for index in range(3)]

    response = export(api, {"ids": [str(result.pk) for result in results], "include_metadata": False})
    chunks = iter(response.streaming_content)
    first = next(chunks)
    (media_root / results[2].file).unlink()
    archive = zipfile.ZipFile(io.BytesIO(first + b"".join(chunks)))

    assert first.startswith(b"PK\x03\x04")
    assert archive.testzip() is None
    assert f"results/{results[0].pk}/000.png" in archive.namelist()
    assert f"results/{results[2].pk}/002.png" not in archive.namelist()
