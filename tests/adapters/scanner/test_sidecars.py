"""Finding and reading sidecar files (SPEC 6.6.4): real files in a temporary LoRA folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from adapters.scanner import sidecars as sidecars_module
from adapters.scanner.sidecars import (
    SIDECAR_MAX_BYTES,
    SidecarFile,
    SidecarSet,
    find_sidecars,
    read_sidecars,
)
from tests.lora_files import write_safetensors
from tests.sidecar_files import a1111, civitai_model, civitai_version, lora_manager, write_json


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return write_safetensors(tmp_path / "loras" / "celestial.v2.safetensors")


def _siblings(folder: Path) -> dict[str, os.stat_result]:
    return {entry.name: entry.stat() for entry in os.scandir(folder)}


def _read(model: Path) -> SidecarSet:
    return read_sidecars(find_sidecars(model))


def _data(result: SidecarSet, kind: str) -> dict:
    found = result.first(kind)
    assert found is not None
    return found.data


def test_find_sidecars_reports_each_role_in_order(model: Path) -> None:
    folder = model.parent
    write_json(folder / "celestial.v2.json", a1111())
    write_json(folder / "celestial.v2.civitai.info", civitai_version())
    write_json(folder / "celestial.v2.metadata.json", lora_manager())
    (folder / "celestial.v2.preview.png").write_bytes(b"png")

    found = find_sidecars(model)

    assert [(item.role, item.path.name) for item in found] == [
        ("lora_manager", "celestial.v2.metadata.json"),
        ("civitai_info", "celestial.v2.civitai.info"),
        ("json", "celestial.v2.json"),
        ("preview", "celestial.v2.preview.png"),
    ]
    stat = os.stat(folder / "celestial.v2.json")
    assert found[2] == SidecarFile("json", folder / "celestial.v2.json", stat.st_size, stat.st_mtime_ns)


def test_find_sidecars_uses_the_stem_without_the_last_extension_only(model: Path) -> None:
    write_json(model.parent / "celestial.json", a1111())  # another model's sidecar

    assert find_sidecars(model) == ()


def test_find_sidecars_returns_the_first_preview_in_suffix_order(model: Path) -> None:
    for name in ("celestial.v2.webp", "celestial.v2.png", "celestial.v2.preview.jpeg"):
        (model.parent / name).write_bytes(b"img")

    found = find_sidecars(model)

    assert [item.path.name for item in found] == ["celestial.v2.preview.jpeg"]


def test_find_sidecars_plain_image_is_a_preview_when_no_preview_suffix_exists(model: Path) -> None:
    (model.parent / "celestial.v2.jpg").write_bytes(b"img")
    (model.parent / "celestial.v2.webp").write_bytes(b"img")

    assert [item.path.name for item in find_sidecars(model)] == ["celestial.v2.jpg"]


def test_find_sidecars_ignores_directories_with_sidecar_names(model: Path) -> None:
    (model.parent / "celestial.v2.civitai.info").mkdir()
    (model.parent / "celestial.v2.png").mkdir()

    assert find_sidecars(model) == ()
    assert find_sidecars(model, _siblings(model.parent)) == ()


def test_find_sidecars_with_siblings_makes_no_system_call(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_json(model.parent / "celestial.v2.civitai.info", civitai_version())
    (model.parent / "celestial.v2.preview.webp").write_bytes(b"img")
    siblings = _siblings(model.parent)
    expected = find_sidecars(model)

    def no_stat(*args, **kwargs):
        raise AssertionError("stat() called")

    monkeypatch.setattr(os, "stat", no_stat)
    monkeypatch.setattr(os, "lstat", no_stat)
    monkeypatch.setattr(os, "scandir", no_stat)
    monkeypatch.setattr(os, "listdir", no_stat)

    assert find_sidecars(model, siblings) == expected
    assert [item.role for item in expected] == ["civitai_info", "preview"]


def test_find_sidecars_with_siblings_trusts_the_listing(model: Path) -> None:
    listed = os.stat(model)

    found = find_sidecars(model, {"celestial.v2.json": listed})

    assert found == (SidecarFile("json", model.parent / "celestial.v2.json", listed.st_size, listed.st_mtime_ns),)


def test_read_sidecars_orders_kinds_and_tells_civitai_model_from_a1111(model: Path) -> None:
    folder = model.parent
    write_json(folder / "celestial.v2.json", civitai_model())
    write_json(folder / "celestial.v2.civitai.info", civitai_version())
    write_json(folder / "celestial.v2.metadata.json", lora_manager())

    result = _read(model)

    assert [sidecar.kind for sidecar in result.sidecars] == ["lora_manager", "civitai_info", "civitai_model"]
    assert _data(result, "civitai_model")["id"] == 265478
    assert result.first("a1111") is None
    assert result.warnings == ()


def test_read_sidecars_json_without_model_versions_list_is_a1111(model: Path) -> None:
    write_json(model.parent / "celestial.v2.json", {"modelVersions": "not a list", "notes": "n"})

    assert [sidecar.kind for sidecar in _read(model).sidecars] == ["a1111"]


def test_read_sidecars_accepts_a_utf8_byte_order_mark(model: Path) -> None:
    (model.parent / "celestial.v2.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(a1111()).encode())

    assert _data(_read(model), "a1111")["sd version"] == "SDXL"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b'{"weight": NaN}', "not valid JSON"),
        (b'{"weight": 1e400}', "number out of range"),
        (b"[1, 2]", "not a JSON object"),
        (b'"text"', "not a JSON object"),
        (b"null", "not a JSON object"),
        (b'{"notes": "caf\xe9"}', "not valid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
)
def test_read_sidecars_bad_content_becomes_a_warning_and_counts_as_absent(
    model: Path, content: bytes, reason: str
) -> None:
    (model.parent / "celestial.v2.civitai.info").write_bytes(content)

    result = _read(model)

    assert result.sidecars == ()
    assert result.warnings == (f"Invalid sidecar celestial.v2.civitai.info: {reason}",)
    assert result.listing() == []


def test_read_sidecars_ignores_a_sidecar_over_10_mib(model: Path) -> None:
    path = model.parent / "celestial.v2.metadata.json"
    path.write_text(json.dumps({"notes": "x" * SIDECAR_MAX_BYTES}))

    result = _read(model)

    assert result.sidecars == ()
    assert result.excluded is False
    assert result.warnings == ("Invalid sidecar celestial.v2.metadata.json: larger than 10 MiB",)


def test_read_sidecars_checks_the_size_it_reads_not_only_the_listed_size(model: Path) -> None:
    path = write_json(model.parent / "celestial.v2.json", {"notes": "x" * SIDECAR_MAX_BYTES})

    result = read_sidecars([SidecarFile("json", path, 10, 0)])  # grew after the walk

    assert result.warnings == ("Invalid sidecar celestial.v2.json: larger than 10 MiB",)


def test_read_sidecars_a_vanished_file_is_a_warning(model: Path) -> None:
    path = model.parent / "celestial.v2.json"

    result = read_sidecars([SidecarFile("json", path, 10, 0)])

    assert result.sidecars == ()
    assert result.warnings == ("Invalid sidecar celestial.v2.json: cannot be read (No such file or directory)",)


def test_read_sidecars_keeps_valid_ones_next_to_a_bad_one(model: Path) -> None:
    (model.parent / "celestial.v2.civitai.info").write_text("oops")
    write_json(model.parent / "celestial.v2.json", a1111())

    result = _read(model)

    assert [sidecar.kind for sidecar in result.sidecars] == ["a1111"]
    assert len(result.warnings) == 1


def test_read_sidecars_takes_the_preview(model: Path) -> None:
    (model.parent / "celestial.v2.preview.png").write_bytes(b"img")

    result = _read(model)

    assert result.preview == model.parent / "celestial.v2.preview.png"
    assert result.sidecars == ()


def test_excluded_reads_lora_manager_exclude_true_only(model: Path) -> None:
    path = model.parent / "celestial.v2.metadata.json"
    write_json(path, lora_manager(exclude=True))
    assert _read(model).excluded is True

    write_json(path, lora_manager(exclude="true"))
    assert _read(model).excluded is False


def test_excluded_ignores_exclude_in_other_sidecars(model: Path) -> None:
    write_json(model.parent / "celestial.v2.json", a1111(exclude=True))

    assert _read(model).excluded is False


def test_listing_gives_kind_path_mtime_in_utc_and_size(model: Path) -> None:
    path = write_json(model.parent / "celestial.v2.civitai.info", civitai_version())
    os.utime(path, ns=(1_704_280_000_123_456_789, 1_704_280_000_123_456_789))

    listing = _read(model).listing()

    assert listing == [
        {
            "kind": "civitai_info",
            "path": str(path),
            "mtime": "2024-01-03T11:06:40.123456Z",
            "size": path.stat().st_size,
        }
    ]


def test_listing_mtime_without_fraction(model: Path) -> None:
    path = write_json(model.parent / "celestial.v2.json", a1111())
    os.utime(path, (1_704_280_000, 1_704_280_000))

    assert _read(model).listing()[0]["mtime"] == "2024-01-03T11:06:40Z"


def test_module_reads_stat_through_os(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_stat = os.stat

    def counting_stat(path, *args, **kwargs):
        calls.append(os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(sidecars_module.os, "stat", counting_stat)

    find_sidecars(model)

    assert len(calls) == 3 + 8  # three data sidecars and every preview candidate when none exists
