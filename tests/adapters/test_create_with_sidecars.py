"""``POST /adapters`` registers the file like a one-file scan (SPEC 5.2): header, sidecars, hash, then the body."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from adapters.models import Adapter, HashStatus, ScannedFile
from adapters.scanner.engine import library_scan
from adapters.scanner.types import ScanOptions
from adapters.services import adapter_hash
from adapters.signals import adapters_imported
from tests.lora_files import metadata_of, write_safetensors
from tests.sidecar_files import a1111, civitai_file, civitai_version, lora_manager, write_json

pytestmark = pytest.mark.django_db
URL = "/api/v1/adapters"
STEM = "celestial_anime_v2"


def post(api, body):
    return api.post(URL, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def model(lora_dir: Path) -> Path:
    return write_safetensors(lora_dir / f"{STEM}.safetensors", metadata_of())


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sidecar_fields_are_imported_and_only_body_fields_locked(api, model: Path):
    info = write_json(model.with_suffix(".civitai.info"), civitai_version(files=[civitai_file(sha256=sha_of(model))]))
    response = post(api, {"name": "My Celestial", "file_path": str(model), "tags": ["Mine"]})
    assert response.status_code == 201, response.json()
    adapter = response.json()["adapter"]
    assert (adapter["name"], adapter["tags"], adapter["locked_fields"]) == ("My Celestial", ["mine"], ["name", "tags"])
    assert (adapter["version"], adapter["author_username"]) == ("v2.0", "stargazer")
    assert adapter["trained_words"] == ["celestial style", "star-filled sky"]
    assert (adapter["civitai_version_id"], adapter["civitai_model_id"]) == (298654, 265478)
    stored = Adapter.objects.get()
    assert (stored.civitai_match, stored.json_file_path) == ("sha256", str(info))
    assert [entry["kind"] for entry in stored.sidecars] == ["civitai_info"]
    assert stored.sha256 == sha_of(model)


def test_rescan_refreshes_sidecar_fields_but_never_the_body_fields(api, model: Path):
    info = model.with_suffix(".civitai.info")
    write_json(info, civitai_version(description="<p>old</p>"))
    post(api, {"name": "Body name", "file_path": str(model), "description": "body description"})
    write_json(info, civitai_version(description="<p>new</p>", name="v3", model={"name": "Renamed upstream"}))
    report = library_scan(options=ScanOptions())
    assert [item.status for item in report.items] == ["updated"]
    adapter = Adapter.objects.get()
    assert (adapter.name, adapter.description, adapter.version) == ("Body name", "body description", "v3")


def test_weight_defaults_to_the_preferred_weight_of_the_sidecar(api, model: Path):
    write_json(model.with_suffix(".json"), a1111(**{"preferred weight": 0.65}))
    adapter = post(api, {"name": "A", "file_path": str(model)}).json()["adapter"]
    assert (adapter["weight"], adapter["preferred_weight"]) == (0.65, 0.65)
    assert adapter["activation_text"] == "celestial style, glowing stars"
    given = write_safetensors(model.parent / "other.safetensors", seed=2)
    write_json(given.with_suffix(".json"), a1111(**{"preferred weight": 0.65}))
    assert post(api, {"name": "B", "file_path": str(given), "weight": 1.2}).json()["adapter"]["weight"] == 1.2


def test_malformed_sidecar_is_ignored(api, model: Path):
    model.with_suffix(".civitai.info").write_text("{broken")
    response = post(api, {"name": "A", "file_path": str(model)})
    assert response.status_code == 201
    assert (response.json()["adapter"]["sidecars"], Adapter.objects.get().json_file_path) == ([], None)


def test_lora_manager_exclude_does_not_refuse_an_explicit_registration(api, model: Path):
    write_json(model.with_suffix(".metadata.json"), lora_manager(exclude=True))
    response = post(api, {"name": "A", "file_path": str(model)})
    assert response.status_code == 201
    assert response.json()["adapter"]["base_model"] == "Illustrious"


def test_registered_file_is_unchanged_for_the_next_scan(api, model: Path, monkeypatch):
    write_json(model.with_suffix(".civitai.info"), civitai_version())
    post(api, {"name": "A", "file_path": str(model)})
    row = ScannedFile.objects.get()
    assert (row.sha256, row.adapter_id, row.excluded) == (sha_of(model), Adapter.objects.get().pk, False)
    monkeypatch.setattr("adapters.scanner.hashing.sha256_file", lambda *a, **k: pytest.fail("hashed"))
    monkeypatch.setattr("adapters.scanner.ingest.read_sidecars", lambda *a: pytest.fail("sidecars re-read"))
    report = library_scan(options=ScanOptions())
    assert (report.unchanged, report.cached, report.items) == (1, 1, [])


def test_registering_a_known_copy_takes_it_off_the_owners_copies(api, model: Path, lora_dir: Path):
    copy = lora_dir / "copy.safetensors"
    shutil.copy(model, copy)
    library_scan(options=ScanOptions())
    owner = Adapter.objects.get()
    assert owner.duplicate_paths == [str(copy)]
    assert post(api, {"name": "The copy", "file_path": str(copy)}).status_code == 201
    owner.refresh_from_db()
    assert (owner.duplicate_paths, owner.has_duplicates) == ([], False)
    assert library_scan(options=ScanOptions()).unchanged == 2


def test_large_file_is_matched_by_hash_once_the_task_hashed_it(
    api, model: Path, settings, django_capture_on_commit_callbacks
):
    settings.LORAFORGE_SYNC_HASH_MAX_MB = 0
    version = civitai_version(files=[civitai_file(name="renamed.safetensors", sha256=sha_of(model))])
    write_json(model.with_suffix(".civitai.info"), version)
    with django_capture_on_commit_callbacks(execute=False):
        adapter = post(api, {"name": "Big", "file_path": str(model)}).json()["adapter"]
    assert (adapter["hash_status"], adapter["sha256"]) == ("pending", None)
    assert Adapter.objects.get().civitai_match != "sha256"  # no hash to compare yet
    hashed = adapter_hash(adapter_id=adapter["id"])
    assert hashed is not None
    assert (hashed.hash_status, hashed.sha256, hashed.civitai_match) == (HashStatus.DONE, sha_of(model), "sha256")
    assert ScannedFile.objects.get().sha256 == sha_of(model)


def test_create_announces_the_adapter_on_commit(api, model: Path, django_capture_on_commit_callbacks):
    received: list[list[str]] = []
    handler = lambda sender, adapter_ids, **kwargs: received.append(adapter_ids)  # noqa: E731
    adapters_imported.connect(handler, weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            adapter_id = post(api, {"name": "A", "file_path": str(model)}).json()["adapter"]["id"]
    finally:
        adapters_imported.disconnect(handler)
    assert received == [[adapter_id]]
