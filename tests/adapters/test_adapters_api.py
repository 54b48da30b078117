"""The adapters REST API as a client sees it (SPEC 5.2, 4.3-4.6, 7)."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest

from adapters.models import Adapter, ScannedFile
from tests.factories import AdapterFactory
from tests.lora_files import metadata_of, write_raw_header, write_safetensors

pytestmark = pytest.mark.django_db
URL = "/api/v1/adapters"


def post(api, url, body):
    return api.post(url, data=json.dumps(body), content_type="application/json")


def patch(api, url, body):
    return api.patch(url, data=json.dumps(body), content_type="application/json")


def test_create_reads_header_and_hashes_the_file(api, lora_dir: Path):
    path = write_safetensors(lora_dir / "anime" / "celestial_anime_v2.safetensors", metadata_of())
    response = post(api, URL, {"name": "Celestial", "file_path": str(path)})
    assert response.status_code == 201, response.json()
    adapter = response.json()["adapter"]
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert adapter["sha256"] == expected
    assert adapter["autov2"] == expected[:10]
    assert adapter["autov3"] == "5be1b2c3d4e5"
    assert adapter["hash_status"] == "done"
    assert adapter["network_dim"] == 32
    assert adapter["network_alpha"] == 16.0
    assert adapter["network_module"] == "networks.lora"
    assert adapter["output_name"] == "celestial_anime_v2"
    assert adapter["sdnext_name"] == "celestial_anime_v2"
    assert adapter["base_family"] == "sdxl"
    assert adapter["base_model"] == "SDXL 1.0"
    assert adapter["header_tags"] == ["1girl", "night sky", "stars"]
    assert adapter["file_size"] == path.stat().st_size
    assert adapter["locked_fields"] == ["name"]
    assert adapter["weight"] == 1.0
    assert adapter["active"] is False
    assert adapter["file_missing"] is False
    assert adapter["preview_url"] is None
    assert "header_metadata" not in adapter


def test_create_accepts_a_path_relative_to_a_lora_folder(api, lora_dir: Path):
    write_safetensors(lora_dir / "sub" / "ink.safetensors")
    response = post(api, URL, {"name": "Ink", "file_path": "sub/ink.safetensors"})
    assert response.status_code == 201
    assert response.json()["adapter"]["file_path"] == str(lora_dir / "sub" / "ink.safetensors")


def test_detail_includes_header_metadata(api, lora_dir: Path):
    path = write_safetensors(lora_dir / "a.safetensors", metadata_of())
    adapter_id = post(api, URL, {"name": "A", "file_path": str(path)}).json()["adapter"]["id"]
    body = api.get(f"{URL}/{adapter_id}").json()["adapter"]
    assert body["header_metadata"]["ss_network_dim"] == "32"
    assert body["header_metadata"]["ss_tag_frequency"] == {
        "10_celestial style": {"1girl": 12, "stars": 7, "night sky": 7}
    }


def test_corrupt_header_registers_the_file_with_header_error(api, lora_dir: Path):
    path = write_raw_header(lora_dir / "broken.safetensors", b"{not json", tail=b"x" * 64)
    response = post(api, URL, {"name": "Broken", "file_path": str(path)})
    assert response.status_code == 201
    adapter = response.json()["adapter"]
    assert adapter["header_error"] == "Invalid safetensors header: not valid JSON"
    assert adapter["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert adapter["network_dim"] is None


def test_large_file_is_left_pending_for_the_hashing_task(
    api, lora_dir: Path, settings, django_capture_on_commit_callbacks
):
    settings.LORAFORGE_SYNC_HASH_MAX_MB = 0
    path = write_safetensors(lora_dir / "big.safetensors")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(api, URL, {"name": "Big", "file_path": str(path)})
    assert response.status_code == 201
    assert response.json()["adapter"]["hash_status"] == "pending"
    assert response.json()["adapter"]["sha256"] is None
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    ("file_path", "message"),
    [
        ("/etc/passwd", "file_path must be inside a configured LoRA folder"),
        ("../x.safetensors", "file_path must be inside a configured LoRA folder"),
        ("{root}/../../etc/passwd", "file_path must be inside a configured LoRA folder"),
        ("{root}/missing.safetensors", "file_path does not exist or is not readable"),
        ("{root}/notes.txt", "file_path must end with .safetensors, .pt or .ckpt"),
        ("{root}/bad\x01name.safetensors", "file_path contains invalid characters"),
        ("{root}/bad\x00name.safetensors", "file_path contains invalid characters"),
        ("/etc/passwd\x00.safetensors", "file_path contains invalid characters"),
        ("{root}/" + "a" * 300 + ".safetensors", "file_path does not exist or is not readable"),  # ENAMETOOLONG
    ],
)
def test_create_rejects_bad_file_paths(api, lora_dir: Path, file_path: str, message: str):
    (lora_dir / "notes.txt").write_text("hello")
    response = post(api, URL, {"name": "X", "file_path": file_path.format(root=lora_dir)})
    assert response.status_code == 400
    body = response.json()
    assert response["Content-Type"] == "application/problem+json"
    assert body["errors"]["file_path"] == [message]
    assert body["type"] == "urn:loraforge:problem:validation-error"
    assert not Adapter.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "bad\x00name"), ("description", "x\x00"), ("tags", ["ok", "b\x00d"]), ("extra", {"k": "v\x00"})],
)
def test_nul_in_a_text_field_is_a_clear_400_on_that_field(api, lora_dir: Path, field: str, value: object):
    path = write_safetensors(lora_dir / "a.safetensors")
    body = {"name": "X", "file_path": str(path), field: value}
    response = post(api, URL, body)
    assert response.status_code == 400
    errors = response.json()["errors"]
    key = next(iter(errors))
    assert key.split(".")[0] == field
    assert errors[key] == ["Null characters are not allowed."]
    assert not Adapter.objects.exists()


def test_symlink_escaping_the_folder_is_outside(api, lora_dir: Path, tmp_path: Path):
    outside = write_safetensors(tmp_path / "outside" / "secret.safetensors")
    (lora_dir / "link.safetensors").symlink_to(outside)
    response = post(api, URL, {"name": "X", "file_path": str(lora_dir / "link.safetensors")})
    assert response.json()["errors"]["file_path"] == ["file_path must be inside a configured LoRA folder"]


def test_create_rejects_a_second_adapter_for_the_same_file(api, lora_dir: Path):
    path = write_safetensors(lora_dir / "a.safetensors")
    assert post(api, URL, {"name": "A", "file_path": str(path)}).status_code == 201
    response = post(api, URL, {"name": "B", "file_path": str(path)})
    assert response.json()["errors"]["file_path"] == ["an adapter already exists for this file"]


def test_name_and_version_are_unique_even_without_version(api, lora_dir: Path):
    first = write_safetensors(lora_dir / "a.safetensors", seed=1)
    second = write_safetensors(lora_dir / "b.safetensors", seed=2)
    assert post(api, URL, {"name": "Same", "file_path": str(first)}).status_code == 201
    response = post(api, URL, {"name": "Same", "file_path": str(second)})
    assert response.status_code == 400
    assert response.json()["errors"]["non_field_errors"] == ["adapter with this name and version already exists"]
    assert post(api, URL, {"name": "Same", "version": "v2", "file_path": str(second)}).status_code == 201


@pytest.mark.parametrize(
    ("rival_takes", "key", "message"),
    [
        ("file", "file_path", "an adapter already exists for this file"),
        ("name", "non_field_errors", "adapter with this name and version already exists"),
    ],
)
def test_a_create_that_loses_a_race_is_a_400_and_writes_nothing(
    api, lora_dir: Path, monkeypatch, rival_takes, key, message
):
    # Another request registers the same file (or takes the name) after this one's checks, before its insert: the
    # unique constraint decides, the loser answers the same 400 as the checks, and none of its writes remain.
    import adapters.services

    path = write_safetensors(lora_dir / "a.safetensors", seed=1)
    rival_path = path if rival_takes == "file" else write_safetensors(lora_dir / "rival.safetensors", seed=2)
    row_of = adapters.services.registered_file_row

    def row_then_lose(*, registered):
        AdapterFactory(name="Rival" if rival_takes == "name" else "Other", version=None, file_path=str(rival_path))
        return row_of(registered=registered)

    monkeypatch.setattr(adapters.services, "registered_file_row", row_then_lose)
    response = post(api, URL, {"name": "Rival", "file_path": str(path)})
    assert response.status_code == 400
    assert response.json()["errors"].get(key) == [message], response.json()
    assert Adapter.objects.count() == 1
    assert not ScannedFile.objects.filter(path=str(path)).exists()


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"weight": "high"}, "weight"),
        ({"weight": 7}, "weight"),
        ({"active": "yes"}, "active"),
        ({"tags": "a,b"}, "tags"),
        ({"ordinal": 1.5}, "ordinal"),
        ({"name": 5}, "name"),
        ({"sdnext_name": "a:b"}, "sdnext_name"),
        ({"sdnext_name": "/abs"}, "sdnext_name"),
        ({"nsfw_level": 64}, "nsfw_level"),
        ({"tags": ["x" * 65]}, "tags.0"),
        ({"surprise": 1}, "surprise"),
        ({"name": None}, "name"),
    ],
)
def test_create_rejects_wrong_types_and_ranges(api, lora_dir: Path, body, key):
    path = write_safetensors(lora_dir / "a.safetensors")
    response = post(api, URL, {"name": "A", "file_path": str(path), **body})
    assert response.status_code == 400, response.json()
    assert key in response.json()["errors"]


def test_sdnext_name_error_text(api, lora_dir: Path):
    path = write_safetensors(lora_dir / "a.safetensors")
    response = post(api, URL, {"name": "A", "file_path": str(path), "sdnext_name": "x<y"})
    assert response.json()["errors"]["sdnext_name"] == [
        "sdnext_name must not contain ':', '<', '>', line breaks or start with '/'"
    ]


def test_unknown_field_message(api, lora_dir: Path):
    path = write_safetensors(lora_dir / "a.safetensors")
    response = post(api, URL, {"name": "A", "file_path": str(path), "bogus": True})
    assert response.json()["errors"] == {"bogus": ["Unknown field."]}
    assert response.json()["detail"] == "Unknown field."


def test_primary_file_size_kb_accepts_numbers_and_numeric_strings(api, lora_dir: Path):
    path = write_safetensors(lora_dir / "a.safetensors")
    response = post(api, URL, {"name": "A", "file_path": str(path), "primary_file_size_kb": "147575.5"})
    assert response.json()["adapter"]["primary_file_size_kb"] == 147576


def test_tags_are_normalised(api, lora_dir: Path):
    path = write_safetensors(lora_dir / "a.safetensors")
    response = post(
        api, URL, {"name": "A", "file_path": str(path), "tags": ["  Anime  Style ", "anime style", "Portrait"]}
    )
    assert response.json()["adapter"]["tags"] == ["anime style", "portrait"]


def test_malformed_json_is_a_malformed_request(api):
    response = api.post(URL, data="{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["type"] == "urn:loraforge:problem:malformed-request"
    assert response.json()["detail"] == "Request body is not valid JSON."


@pytest.mark.parametrize("raw", ['{"weight": NaN}', '{"weight": Infinity}', '{"name": "a"'])
def test_non_standard_json_is_malformed(api, raw):
    response = api.post(URL, data=raw, content_type="application/json")
    assert response.json()["detail"] == "Request body is not valid JSON."


def test_json_that_is_not_an_object_is_malformed(api):
    response = api.post(URL, data="[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"] == "Request body must be a JSON object."


def test_wrong_content_type_is_415(api):
    response = api.post(URL, data="name=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["detail"] == "Content-Type must be application/json"
    assert response.json()["type"] == "urn:loraforge:problem:unsupported-media-type"


def test_oversize_body_is_413(api, settings):
    settings.LORAFORGE_MAX_BODY_MB = 1
    body = json.dumps({"name": "x" * (1024 * 1024 + 10)})
    response = api.post(URL, data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["detail"] == "Request body too large (limit 1 MB)"


def test_get_unknown_and_non_uuid_ids_are_404(api):
    response = api.get(f"{URL}/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["detail"] == "Adapter not found"
    response = api.get(f"{URL}/not-a-uuid")
    assert response.status_code == 404
    assert response.json()["type"] == "urn:loraforge:problem:not-found"


def test_unsupported_method_is_405_with_allow(api):
    adapter = AdapterFactory()
    response = api.put(f"{URL}/{adapter.pk}", data="{}", content_type="application/json")
    assert response.status_code == 405
    assert "PATCH" in response["Allow"]
    assert response.json()["type"] == "urn:loraforge:problem:method-not-allowed"


def test_trailing_slash_is_optional_without_redirects(api):
    adapter = AdapterFactory()
    for url in (URL, f"{URL}/", f"{URL}/{adapter.pk}", f"{URL}/{adapter.pk}/", f"/v1/adapters/{adapter.pk}"):
        assert api.get(url).status_code == 200, url


def test_unknown_api_path_is_a_problem_404(api):
    for url in ("/api/v1/nothing-here", "/v1/nope/deeper", "/api/other"):
        response = api.get(url)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/problem+json"


# --- PATCH ----------------------------------------------------------------------------------


def test_patch_locks_curatable_fields(api):
    adapter = AdapterFactory()
    response = patch(api, f"{URL}/{adapter.pk}", {"description": "hand written", "weight": 0.5, "tags": ["B", "a"]})
    assert response.status_code == 200
    body = response.json()["adapter"]
    assert body["description"] == "hand written"
    assert body["weight"] == 0.5
    assert body["tags"] == ["b", "a"]
    assert body["locked_fields"] == ["description", "tags"]


def test_patch_can_unlock_fields(api):
    adapter = AdapterFactory(locked_fields=["description", "tags"])
    body = patch(api, f"{URL}/{adapter.pk}", {"locked_fields": ["tags"]}).json()["adapter"]
    assert body["locked_fields"] == ["tags"]


def test_patch_rejects_unknown_lock_names(api):
    adapter = AdapterFactory()
    response = patch(api, f"{URL}/{adapter.pk}", {"locked_fields": ["file_path"]})
    assert "locked_fields.0" in response.json()["errors"]


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ({}, "non_field_errors", "No valid fields provided for update"),
        ({"file_path": "/x.safetensors"}, "file_path", "This field cannot be changed."),
        ({"sha256": "0" * 64}, "sha256", "This field cannot be changed."),
        ({"id": str(uuid.uuid4())}, "id", "This field cannot be changed."),
        ({"flavour": "x"}, "flavour", "Unknown field."),
    ],
)
def test_patch_errors(api, body, key, message):
    adapter = AdapterFactory()
    response = patch(api, f"{URL}/{adapter.pk}", body)
    assert response.status_code == 400
    assert response.json()["errors"].get(key) == [message], response.json()


def test_patch_name_clash(api):
    AdapterFactory(name="Taken", version=None)
    adapter = AdapterFactory()
    response = patch(api, f"{URL}/{adapter.pk}", {"name": "Taken"})
    assert response.json()["errors"]["non_field_errors"] == ["adapter with this name and version already exists"]


def test_patch_updates_updated_at(api):
    adapter = AdapterFactory()
    before = Adapter.objects.get(pk=adapter.pk).updated_at
    patch(api, f"{URL}/{adapter.pk}", {"notes": "x"})
    assert Adapter.objects.get(pk=adapter.pk).updated_at > before


# --- delete, activate, bulk ------------------------------------------------------------------


def test_delete_excludes_path_and_hash_by_default(api, lora_dir: Path):
    path = write_safetensors(lora_dir / "a.safetensors")
    adapter_id = post(api, URL, {"name": "A", "file_path": str(path)}).json()["adapter"]["id"]
    assert api.delete(f"{URL}/{adapter_id}").status_code == 204
    assert not Adapter.objects.filter(pk=adapter_id).exists()
    assert path.exists()
    cached = ScannedFile.objects.get(path=str(path))
    assert cached.excluded is True
    assert cached.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_delete_without_exclusion(api, lora_dir: Path):
    path = write_safetensors(lora_dir / "a.safetensors")
    adapter_id = post(api, URL, {"name": "A", "file_path": str(path)}).json()["adapter"]["id"]
    assert api.delete(f"{URL}/{adapter_id}?exclude=false").status_code == 204
    assert not ScannedFile.objects.filter(excluded=True).exists()


def test_delete_rejects_bad_exclude_value(api):
    adapter = AdapterFactory()
    response = api.delete(f"{URL}/{adapter.pk}?exclude=maybe")
    assert response.status_code == 400
    assert "exclude" in response.json()["errors"]
    assert Adapter.objects.filter(pk=adapter.pk).exists()


def test_recreating_an_excluded_file_clears_the_exclusion(api, lora_dir: Path):
    path = write_safetensors(lora_dir / "a.safetensors")
    adapter_id = post(api, URL, {"name": "A", "file_path": str(path)}).json()["adapter"]["id"]
    api.delete(f"{URL}/{adapter_id}")
    assert post(api, URL, {"name": "A", "file_path": str(path)}).status_code == 201
    assert not ScannedFile.objects.filter(excluded=True).exists()


def test_activate_with_ordinal_in_query_and_body(api):
    adapter = AdapterFactory()
    body = api.post(f"{URL}/{adapter.pk}/activate?ordinal=3").json()["adapter"]
    assert (body["active"], body["ordinal"]) == (True, 3)
    body = post(api, f"{URL}/{adapter.pk}/activate?ordinal=3", {"ordinal": 7}).json()["adapter"]
    assert body["ordinal"] == 7
    body = post(api, f"{URL}/{adapter.pk}/activate", {"ordinal": None}).json()["adapter"]
    assert body["ordinal"] is None


@pytest.mark.parametrize("query", ["ordinal=abc", "ordinal=2000000"])
def test_activate_rejects_bad_ordinal(api, query):
    adapter = AdapterFactory()
    response = api.post(f"{URL}/{adapter.pk}/activate?{query}")
    assert response.status_code == 400
    assert "ordinal" in response.json()["errors"]


def test_deactivate_keeps_ordinal(api):
    adapter = AdapterFactory(active=True, ordinal=4)
    body = api.post(f"{URL}/{adapter.pk}/deactivate").json()["adapter"]
    assert (body["active"], body["ordinal"]) == (False, 4)


def test_activate_unknown_adapter(api):
    response = api.post(f"{URL}/{uuid.uuid4()}/activate")
    assert response.status_code == 404
    assert response.json()["detail"] == "Adapter not found"


def test_bulk_activate_reports_missing_and_counts_duplicates_once(api):
    first, second = AdapterFactory(), AdapterFactory()
    unknown = str(uuid.uuid4())
    body = {"action": "activate", "lora_ids": [str(first.pk), str(second.pk), str(first.pk), unknown]}
    response = post(api, f"{URL}/bulk", body).json()
    assert response == {
        "success": True,
        "action": "activate",
        "processed": 2,
        "ids": [str(first.pk), str(second.pk)],
        "missing": [unknown],
    }
    assert Adapter.objects.filter(active=True).count() == 2


def test_bulk_delete(api):
    adapters = AdapterFactory.create_batch(3)
    response = post(
        api, f"{URL}/bulk", {"action": "delete", "lora_ids": [str(a.pk) for a in adapters[:2]], "exclude": False}
    )
    assert response.json()["processed"] == 2
    assert list(Adapter.objects.values_list("pk", flat=True)) == [adapters[2].pk]


def test_bulk_empty_list(api):
    assert post(api, f"{URL}/bulk", {"action": "deactivate", "lora_ids": []}).json()["processed"] == 0


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ({"action": "explode", "lora_ids": []}, "action", "action must be one of: activate, deactivate, delete"),
        ({"action": "activate", "lora_ids": [str(uuid.uuid4())] * 3 + ["nope"]}, "lora_ids.3", "Must be a valid UUID."),
        ({"action": "activate", "lora_ids": [False]}, "lora_ids.0", "Must be a valid UUID."),
        ({"action": "activate", "lora_ids": [0]}, "lora_ids.0", "Must be a valid UUID."),
    ],
)
def test_bulk_errors(api, body, key, message):
    response = post(api, f"{URL}/bulk", body)
    assert response.status_code == 400
    assert response.json()["errors"].get(key) == [message], response.json()


def test_bulk_rejects_more_than_1000_ids(api):
    response = post(api, f"{URL}/bulk", {"action": "activate", "lora_ids": [str(uuid.uuid4()) for _ in range(1001)]})
    assert response.status_code == 400
    assert "lora_ids" in response.json()["errors"]


def test_tags_with_counts(api):
    AdapterFactory(tags=["portrait", "anime"])
    AdapterFactory(tags=["anime"])
    AdapterFactory(tags=[])
    assert api.get(f"{URL}/tags").json() == {"tags": ["anime", "portrait"], "counts": {"anime": 2, "portrait": 1}}


def test_sdnext_name_is_the_stem_as_sdnext_names_it(api, lora_dir: Path):
    path = write_safetensors(lora_dir / "my.style.v1.safetensors")
    adapter = post(api, URL, {"name": "Dotted", "file_path": str(path)}).json()["adapter"]
    assert adapter["sdnext_name"] == "my_style_v1"
