"""``adapter_rescan`` (POST /adapters/{id}/rescan) and ``adapter_hash`` (the task behind large uploads)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from adapters.models import Adapter, HashStatus
from adapters.scanner.engine import adapter_rescan
from adapters.services import adapter_hash
from adapters.signals import adapters_imported
from tests.adapters.scanner.test_engine import lora, scan, sha_of
from tests.lora_files import metadata_of, write_safetensors
from tests.sidecar_files import civitai_file, civitai_model, civitai_version, write_json

pytestmark = pytest.mark.django_db


@pytest.fixture
def scanned(lora_dir: Path) -> tuple[Path, Adapter]:
    path = lora(lora_dir, "a.safetensors")
    scan()
    return path, Adapter.objects.get()


def test_rescan_of_an_unchanged_file(scanned):
    path, adapter = scanned
    refreshed, item = adapter_rescan(adapter=adapter)
    assert item.to_dict() == {"path": str(path), "status": "unchanged", "adapter_id": str(adapter.pk), "detail": None}
    assert refreshed.pk == adapter.pk


def test_rescan_reads_changed_sidecars(scanned, lora_dir: Path):
    _path, adapter = scanned
    (lora_dir / "a.civitai.info").write_text('{"id": 7, "name": "v7", "description": "new"}')
    refreshed, item = adapter_rescan(adapter=adapter)
    assert (item.status, refreshed.civitai_version_id, refreshed.description) == ("updated", 7, "new")


def test_rescan_of_a_replaced_file_is_changed(scanned):
    path, adapter = scanned
    write_safetensors(path, metadata_of(ss_output_name="a"), seed=5)
    refreshed, item = adapter_rescan(adapter=adapter)
    assert (item.status, refreshed.sha256) == ("changed", sha_of(path))


def test_rescan_of_a_missing_file_sets_missing_since(scanned):
    path, adapter = scanned
    path.unlink()
    refreshed, item = adapter_rescan(adapter=adapter)
    assert item.to_dict() == {"path": str(path), "status": "missing", "adapter_id": str(adapter.pk), "detail": None}
    assert refreshed.missing_since is not None


def test_rescan_with_force_rehash_reads_the_file(scanned, monkeypatch):
    path, adapter = scanned
    calls: list[str] = []
    from adapters.scanner import hashing

    real = hashing.sha256_file
    monkeypatch.setattr(hashing, "sha256_file", lambda target, on_bytes=None: calls.append(str(target)) or real(target))
    adapter_rescan(adapter=adapter)
    assert calls == []
    _, item = adapter_rescan(adapter=adapter, force_rehash=True)
    assert (calls, item.status) == ([str(path)], "unchanged")


def test_rescan_does_not_touch_the_adapters_copies(scanned, lora_dir: Path):
    path, adapter = scanned
    shutil.copy(path, lora_dir / "copy.safetensors")
    _, item = adapter_rescan(adapter=adapter)
    assert item.status == "unchanged"
    assert Adapter.objects.get().duplicate_paths == []


def test_rescan_of_a_file_outside_the_folders_is_an_error(lora_dir: Path, tmp_path: Path):
    outside = lora(tmp_path / "outside", "x.safetensors")
    adapter = Adapter.objects.create(name="X", sdnext_name="x", file_path=str(outside))
    refreshed, item = adapter_rescan(adapter=adapter)
    assert (item.status, item.detail) == ("error", "File is outside the configured LoRA folders")
    assert refreshed.sha256 is None


def test_rescan_announces_an_updated_adapter(scanned, lora_dir: Path):
    _, adapter = scanned
    received: list[list[str]] = []
    handler = lambda sender, adapter_ids, **kwargs: received.append(adapter_ids)  # noqa: E731
    adapters_imported.connect(handler, weak=False)
    try:
        adapter_rescan(adapter=adapter)
        os.utime(Path(adapter.file_path), ns=(0, 10**18))
        adapter_rescan(adapter=adapter)
    finally:
        adapters_imported.disconnect(handler)
    assert received == [[str(adapter.pk)]]


def test_adapter_hash_completes_a_pending_adapter_and_matches_civitai_by_hash(lora_dir: Path):
    path = lora(lora_dir, "celestial_anime_v2.safetensors")
    sha = sha_of(path)
    model = civitai_model(
        modelVersions=[
            civitai_version(id=2, name="v2", files=[civitai_file(name="other.safetensors", sha256="0" * 64)]),
            civitai_version(id=1, name="v1", files=[civitai_file(name="renamed.safetensors", sha256=sha)]),
        ]
    )
    write_json(path.with_suffix(".json"), model)
    adapter = Adapter.objects.create(
        name="Celestial", sdnext_name="celestial", file_path=str(path), hash_status=HashStatus.PENDING
    )
    hashed = adapter_hash(adapter_id=adapter.pk)
    assert hashed is not None
    assert (hashed.sha256, hashed.hash_status) == (sha, HashStatus.DONE)
    assert (hashed.civitai_version_id, hashed.civitai_match) == (1, "sha256")


def test_adapter_hash_of_an_unknown_adapter(db):
    assert adapter_hash(adapter_id="7c9e6679-7425-40de-944b-e07fc1f90ae7") is None


def test_a_rescan_never_overwrites_an_edit_made_while_it_ran(scanned, monkeypatch):
    """The scan saves only the fields it changed: a curator's edit between its read and its write survives."""
    from adapters.scanner import apply

    original = apply.import_fields

    def edit_meanwhile(adapter, *args, **kwargs):
        Adapter.objects.filter(pk=adapter.pk).update(notes="edited meanwhile", tags=["curated"])
        return original(adapter, *args, **kwargs)

    path, adapter = scanned
    write_safetensors(path, metadata_of(ss_output_name="a"), seed=5)  # new content: the scan writes the row
    monkeypatch.setattr(apply, "import_fields", edit_meanwhile)
    refreshed, item = adapter_rescan(adapter=adapter)
    assert (item.status, refreshed.sha256) == ("changed", sha_of(path))
    assert (refreshed.notes, refreshed.tags) == ("edited meanwhile", ["curated"])


def test_a_patch_never_overwrites_a_hash_written_since_it_read_the_row(scanned):
    """The PATCH saves only what it set: hashing that finished after the row was read keeps its result."""
    from adapters.services import adapter_update

    _path, adapter = scanned
    stale = Adapter.objects.get(pk=adapter.pk)
    Adapter.objects.filter(pk=adapter.pk).update(sha256="f" * 64, hash_status=HashStatus.DONE)
    adapter_update(adapter=stale, changes={"notes": "curator's note"})
    fresh = Adapter.objects.get(pk=adapter.pk)
    assert (fresh.notes, fresh.sha256, fresh.hash_status) == ("curator's note", "f" * 64, HashStatus.DONE)
    assert "notes" in fresh.locked_fields
