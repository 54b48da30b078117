"""Bad files never stop a scan (SPEC 6.6.2, 6.6.3, 7): each case sits next to a good file that is still imported."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from adapters.models import Adapter, HashStatus, ScannedFile
from adapters.scanner import hashing
from adapters.scanner.types import NullProgress
from tests.adapters.scanner.test_engine import lora, scan, sha_of
from tests.lora_files import write_raw_header, write_safetensors

pytestmark = pytest.mark.django_db


@pytest.fixture
def good(lora_dir: Path) -> Path:
    return lora(lora_dir, "good.safetensors", seed=42)


def item_for(report, path: Path):
    return next(item for item in report.items if item.path == str(path))


def assert_good_imported(report, good: Path) -> None:
    assert item_for(report, good).status == "created"
    assert Adapter.objects.get(file_path=str(good)).sha256 == sha_of(good)


def assert_registered_with_header_error(report, path: Path, error: str) -> None:
    """A header error is not a scan error: the file is created and hashed, the text is the item's detail."""
    item = item_for(report, path)
    assert (item.status, item.detail) == ("created", error)
    assert report.errors == 0
    adapter = Adapter.objects.get(file_path=str(path))
    assert (adapter.header_error, adapter.sha256, adapter.hash_status) == (error, sha_of(path), HashStatus.DONE)
    assert (adapter.network_dim, adapter.header_metadata) == (None, None)


def test_zero_byte_file(lora_dir: Path, good: Path):
    path = lora_dir / "empty.safetensors"
    path.write_bytes(b"")
    report = scan()
    assert_registered_with_header_error(report, path, "Invalid safetensors header: file is shorter than 8 bytes")
    assert_good_imported(report, good)


def test_truncated_file(lora_dir: Path, good: Path):
    path = write_safetensors(lora_dir / "cut.safetensors", seed=3)
    path.write_bytes(path.read_bytes()[:20])
    report = scan()
    assert_registered_with_header_error(report, path, "Invalid safetensors header: declared length exceeds file size")
    assert_good_imported(report, good)


def test_header_length_larger_than_the_file(lora_dir: Path, good: Path):
    path = write_raw_header(lora_dir / "long.safetensors", b'{"a": 1}', declared_length=10_000)
    report = scan()
    assert_registered_with_header_error(report, path, "Invalid safetensors header: declared length exceeds file size")
    assert_good_imported(report, good)


def test_header_length_larger_than_the_cap(lora_dir: Path, good: Path, settings):
    settings.LORAFORGE_HEADER_MAX_MB = 1
    header = b'{"__metadata__": {"a": "b"}}' + b" " * (2 * 1024 * 1024)
    path = write_raw_header(lora_dir / "huge.safetensors", header)
    report = scan()
    assert_registered_with_header_error(report, path, "Invalid safetensors header: declared length exceeds limit")
    assert_good_imported(report, good)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"{not json", "Invalid safetensors header: not valid JSON"),
        (b'{"a": "\xff\xfe"}', "Invalid safetensors header: not valid UTF-8"),
        (b"[1, 2]", "Invalid safetensors header: not a JSON object"),
        (b'{"__metadata__": "text"}', "Invalid safetensors header: __metadata__ is not an object"),
    ],
)
def test_header_that_is_not_a_json_object(lora_dir: Path, good: Path, raw: bytes, error: str):
    path = write_raw_header(lora_dir / "bad.safetensors", raw, tail=b"\0" * 32)
    report = scan()
    assert_registered_with_header_error(report, path, error)
    assert_good_imported(report, good)


def test_metadata_values_that_are_not_strings_are_stringified(lora_dir: Path, good: Path):
    header = {"__metadata__": {"ss_network_dim": 16, "ss_output_name": "typed", "flags": {"a": [1, 2]}, "none": None}}
    path = write_raw_header(lora_dir / "typed.safetensors", json.dumps(header).encode(), tail=b"\0" * 16)
    report = scan()
    assert item_for(report, path).status == "created"
    adapter = Adapter.objects.get(file_path=str(path))
    assert adapter.header_metadata == {
        "ss_network_dim": "16", "ss_output_name": "typed", "flags": '{"a": [1, 2]}', "none": "null"
    }  # fmt: skip
    assert (adapter.network_dim, adapter.header_error) == (16, None)
    assert_good_imported(report, good)


def test_nested_json_strings_that_do_not_parse_are_kept_as_text(lora_dir: Path, good: Path):
    path = write_safetensors(
        lora_dir / "nested.safetensors",
        {"ss_tag_frequency": "{broken", "ss_datasets": "[also broken", "ss_output_name": "nested"},
        seed=5,
    )
    report = scan()
    assert (item_for(report, path).status, item_for(report, path).detail) == ("created", None)
    adapter = Adapter.objects.get(file_path=str(path))
    assert (adapter.header_metadata or {})["ss_tag_frequency"] == "{broken"
    assert (adapter.header_tags, adapter.trained_words) == ([], [])
    assert_good_imported(report, good)


def test_nul_characters_in_the_header_are_dropped_so_every_database_stores_it(lora_dir: Path, good: Path):
    header = {"__metadata__": {"ss_output_name": "nul\u0000name", "note": "a\u0000b"}}
    path = write_raw_header(lora_dir / "nul.safetensors", json.dumps(header).encode(), tail=b"\0" * 16)
    report = scan()
    assert item_for(report, path).status == "created"
    adapter = Adapter.objects.get(file_path=str(path))
    assert (adapter.output_name, (adapter.header_metadata or {})["note"]) == ("nulname", "ab")
    assert_good_imported(report, good)


@pytest.mark.parametrize(
    ("content", "reason"),
    [("{not json", "not valid JSON"), ("[1, 2]", "not a JSON object"), (b"\xff\xfe{}", "not valid UTF-8")],
)
def test_malformed_sidecar_is_a_warning_and_counts_as_absent(lora_dir: Path, good: Path, content, reason):
    path = lora(lora_dir, "model.safetensors", seed=8)
    sidecar = lora_dir / "model.civitai.info"
    sidecar.write_bytes(content if isinstance(content, bytes) else content.encode())
    report = scan()
    item = item_for(report, path)
    assert (item.status, item.detail) == ("created", f"Invalid sidecar model.civitai.info: {reason}")
    assert report.errors == 0
    adapter = Adapter.objects.get(file_path=str(path))
    assert (adapter.sidecars, adapter.json_file_path, adapter.name) == ([], None, "model")
    assert_good_imported(report, good)


def test_unreadable_file_is_an_error_and_creates_nothing(lora_dir: Path, good: Path, monkeypatch):
    # Tests run as root, where chmod 000 does not stop reads: simulate the permission error for that one path.
    path = lora(lora_dir, "locked.safetensors", seed=9)
    real_sha256_file = hashing.sha256_file

    def sha256_file(target, on_bytes=None):
        if str(target) == str(path):
            raise PermissionError(13, "Permission denied", str(target))
        return real_sha256_file(target, on_bytes=on_bytes)

    monkeypatch.setattr(hashing, "sha256_file", sha256_file)
    report = scan()
    assert item_for(report, path).to_dict() == {
        "path": str(path), "status": "error", "adapter_id": None, "detail": "Permission denied"
    }  # fmt: skip
    assert (report.errors, report.hashed, report.created) == (1, 1, 1)
    assert not Adapter.objects.filter(file_path=str(path)).exists()
    assert_good_imported(report, good)


def test_unreadable_file_of_an_existing_adapter_gets_hash_status_error(lora_dir: Path, monkeypatch):
    path = lora(lora_dir, "a.safetensors")
    scan()
    adapter = Adapter.objects.get()
    real_open = open

    def failing_open(file, *args, **kwargs):
        if str(file) == str(path):
            raise OSError(5, "Input/output error", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", failing_open)
    report = scan(force_rehash=True)
    assert [item.to_dict() for item in report.items] == [
        {"path": str(path), "status": "error", "adapter_id": str(adapter.pk), "detail": "Input/output error"}
    ]
    assert Adapter.objects.get().hash_status == HashStatus.ERROR
    monkeypatch.undo()
    healed = scan()
    assert [item.status for item in healed.items] == ["updated"]
    assert Adapter.objects.get().hash_status == HashStatus.DONE


def test_symlink_loop_is_an_error_item(lora_dir: Path, good: Path):
    loop = lora_dir / "loop.safetensors"
    loop.symlink_to(loop)
    (lora_dir / "sub").mkdir()
    (lora_dir / "sub" / "up").symlink_to(lora_dir, target_is_directory=True)
    report = scan()
    assert item_for(report, loop).to_dict() == {
        "path": str(loop), "status": "error", "adapter_id": None, "detail": "Too many levels of symbolic links"
    }  # fmt: skip
    assert (report.files_seen, report.errors) == (1, 1)
    assert_good_imported(report, good)


def test_symlink_escaping_the_folder_is_skipped(lora_dir: Path, good: Path, tmp_path: Path):
    outside = lora(tmp_path / "outside", "secret.safetensors", seed=4)
    (lora_dir / "escape.safetensors").symlink_to(outside)
    report = scan()
    assert (report.files_seen, report.errors, [item.path for item in report.items]) == (1, 0, [str(good)])
    assert_good_imported(report, good)


@pytest.mark.parametrize("name", ["with space.safetensors", "ünïcødé ✨.safetensors", "new\nline.safetensors"])
def test_odd_characters_in_a_file_name(lora_dir: Path, good: Path, name: str):
    path = lora(lora_dir, name, seed=6)
    report = scan()
    assert item_for(report, path).status == "created"
    adapter = Adapter.objects.get(file_path=str(path))
    assert (adapter.sha256, adapter.sdnext_name) == (sha_of(path), Path(name).stem)
    assert scan().unchanged == 2
    assert_good_imported(report, good)


def test_missing_lora_folder_is_an_error_item(lora_dir: Path, good: Path, tmp_path: Path, settings):
    missing = tmp_path / "unmounted"
    settings.LORAFORGE_LORA_DIRS = [lora_dir, missing]
    report = scan()
    assert item_for(report, missing).to_dict() == {
        "path": str(missing), "status": "error", "adapter_id": None, "detail": f"LoRA folder does not exist: {missing}"
    }  # fmt: skip
    assert (report.errors, report.roots) == (1, [str(lora_dir), str(missing)])
    assert_good_imported(report, good)


def test_file_that_disappears_between_listing_and_hashing(lora_dir: Path, good: Path):
    path = lora(lora_dir, "fleeting.safetensors", seed=11)

    class DeleteAfterListing(NullProgress):
        def planned(self, *, files: int, bytes_to_hash: int) -> None:
            path.unlink()  # the walk has listed it; hashing has not started

    from adapters.scanner.engine import library_scan
    from adapters.scanner.types import ScanOptions

    report = library_scan(options=ScanOptions(), progress=DeleteAfterListing())
    assert item_for(report, path).to_dict() == {
        "path": str(path), "status": "error", "adapter_id": None, "detail": "No such file or directory"
    }  # fmt: skip
    assert report.errors == 1
    assert_good_imported(report, good)


def test_pt_and_ckpt_files_are_hashed_but_never_parsed(lora_dir: Path, good: Path):
    pickle_like = lora_dir / "old.ckpt"
    pickle_like.write_bytes(struct.pack("<Q", 5) + b"\x80\x04K\x01." + os.urandom(64))
    report = scan()
    assert item_for(report, pickle_like).to_dict()["status"] == "created"
    adapter = Adapter.objects.get(file_path=str(pickle_like))
    assert (adapter.format, adapter.header_error, adapter.header_metadata) == ("ckpt", None, None)
    assert adapter.sha256 == sha_of(pickle_like)
    assert scan().unchanged == 2
    assert_good_imported(report, good)


def test_a_file_that_cannot_be_stored_is_an_error_item_and_rolls_back_alone(lora_dir: Path, good: Path, monkeypatch):
    # A concurrent edit takes the name after the scan loaded the names: the insert fails for this file only.
    path = write_safetensors(lora_dir / "clash.safetensors", {"ss_output_name": "Taken"}, seed=12)
    monkeypatch.setattr("adapters.scanner.identity.NameRegistry.holder", lambda self, name, version: None)
    Adapter.objects.create(name="Taken", sdnext_name="taken", file_path=str(lora_dir / "elsewhere.safetensors"))
    report = scan()
    item = item_for(report, path)
    assert item.status == "error"
    assert item.detail is not None
    assert item.detail.startswith("Could not import this file: ")
    assert not Adapter.objects.filter(file_path=str(path)).exists()
    assert not ScannedFile.objects.filter(path=str(path)).exists()
    assert_good_imported(report, good)


def test_a_path_outside_the_folders_is_refused(lora_dir: Path, good: Path, tmp_path: Path):
    outside = lora(tmp_path / "outside", "x.safetensors")
    report = scan(paths=[outside.parent, lora_dir])
    assert item_for(report, outside.parent).to_dict() == {
        "path": str(outside.parent), "status": "error", "adapter_id": None,
        "detail": "path must be inside a configured LoRA folder",
    }  # fmt: skip
    assert not Adapter.objects.filter(file_path=str(outside)).exists()
    assert_good_imported(report, good)
