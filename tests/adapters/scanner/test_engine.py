"""The library scan on real folders (SPEC 6.6.3, 6.6.6, 6.6.8): identity, duplicates, moves, cache, report.

Every test writes real safetensors files into a temporary LoRA folder, scans it and checks the rows and the
report; derived values are computed independently here (``hashlib`` over the file bytes).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from adapters.models import Adapter, HashStatus, ScannedFile
from adapters.scanner.engine import library_scan
from adapters.scanner.types import ScanOptions, ScanReport
from adapters.services import adapter_delete, adapter_set_active, adapter_update
from tests.factories import AdapterFactory
from tests.lora_files import metadata_of, write_safetensors

pytestmark = pytest.mark.django_db


def scan(**options) -> ScanReport:
    paths = options.pop("paths", None)
    return library_scan(options=ScanOptions(paths=tuple(paths) if paths else None, **options))


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def counters(report: ScanReport) -> dict[str, int]:
    data = report.to_dict(include_items=False)
    return {key: value for key, value in data.items() if isinstance(value, int) and not isinstance(value, bool)}


def statuses(report: ScanReport) -> list[tuple[str, str]]:
    return [(Path(item.path).name, item.status) for item in report.items]


def lora(root: Path, name: str, *, seed: int = 0, **metadata) -> Path:
    return write_safetensors(root / name, metadata_of(ss_output_name=Path(name).stem, **metadata), seed=seed)


# --- first scan ------------------------------------------------------------------------------------


def test_first_scan_creates_one_adapter_per_file_with_values_from_the_file(lora_dir: Path):
    path = lora(lora_dir, "anime/celestial.v2.safetensors")
    report = scan()
    adapter = Adapter.objects.get()
    expected = sha_of(path)
    assert (adapter.sha256, adapter.autov2, adapter.autov3) == (expected, expected[:10], "5be1b2c3d4e5")
    assert adapter.hash_status == HashStatus.DONE
    assert adapter.file_path == str(path)
    assert adapter.file_size == path.stat().st_size
    assert adapter.name == "celestial.v2"  # ss_output_name
    assert adapter.sdnext_name == "celestial_v2"  # as SDNext names the file
    assert (adapter.network_dim, adapter.network_alpha, adapter.network_module) == (32, 16.0, "networks.lora")
    assert (adapter.base_family, adapter.base_model) == ("sdxl", "SDXL 1.0")
    assert adapter.header_tags == ["1girl", "night sky", "stars"]
    assert adapter.trained_words == ["celestial style"]
    assert (adapter.active, adapter.weight, adapter.ordinal, adapter.locked_fields) == (False, 1.0, None, [])
    assert adapter.last_ingested_at is not None
    assert [item.to_dict() for item in report.items] == [
        {"path": str(path), "status": "created", "adapter_id": str(adapter.pk), "detail": None}
    ]


def test_first_scan_fills_the_cache(lora_dir: Path):
    path = lora(lora_dir, "a.safetensors")
    scan()
    row = ScannedFile.objects.get()
    stat = path.stat()
    assert (row.path, row.size, row.mtime_ns, row.sha256) == (str(path), stat.st_size, stat.st_mtime_ns, sha_of(path))
    assert (row.header or {})["ss_network_dim"] == "32"
    assert row.adapter_id == Adapter.objects.get().pk
    assert row.sidecar_fingerprint
    assert not row.excluded


def test_report_counts_every_status_and_bytes(lora_dir: Path):
    a = lora(lora_dir, "a.safetensors")
    b = lora(lora_dir, "b.safetensors", seed=1)
    copy = lora_dir / "copies" / "a-copy.safetensors"
    copy.parent.mkdir()
    shutil.copy(a, copy)
    report = scan()
    size = a.stat().st_size + b.stat().st_size + copy.stat().st_size
    assert counters(report) == {
        "files_seen": 3, "hashed": 3, "cached": 0, "bytes_hashed": size, "created": 2, "updated": 0, "changed": 0,
        "unchanged": 0, "moved": 0, "duplicates": 1, "missing": 0, "excluded": 0, "errors": 0,
    }  # fmt: skip
    assert statuses(report) == [
        ("a.safetensors", "created"),
        ("b.safetensors", "created"),
        ("a-copy.safetensors", "duplicate"),
    ]
    assert report.roots == [str(lora_dir)]
    assert report.duration_seconds > 0


def test_report_as_job_result(lora_dir: Path):
    path = lora(lora_dir, "a.safetensors")
    report = scan(dry_run=True).to_dict()
    assert report == {
        "dry_run": True, "roots": [str(lora_dir)], "files_seen": 1, "hashed": 1, "cached": 0,
        "bytes_hashed": path.stat().st_size, "created": 1, "updated": 0, "changed": 0, "unchanged": 0, "moved": 0,
        "duplicates": 0, "missing": 0, "excluded": 0, "errors": 0, "duration_seconds": report["duration_seconds"],
        "items": [{"path": str(path), "status": "created", "adapter_id": None, "detail": None}],
        "items_truncated": False,
    }  # fmt: skip


# --- unchanged rescans ------------------------------------------------------------------------------


def test_unchanged_rescan_reports_every_file_unchanged_from_the_cache(lora_dir: Path):
    a = lora(lora_dir, "a.safetensors")
    lora(lora_dir, "b.safetensors", seed=1)
    shutil.copy(a, lora_dir / "c.safetensors")
    scan()
    report = scan()
    assert counters(report) == {
        "files_seen": 3, "hashed": 0, "cached": 3, "bytes_hashed": 0, "created": 0, "updated": 0, "changed": 0,
        "unchanged": 3, "moved": 0, "duplicates": 0, "missing": 0, "excluded": 0, "errors": 0,
    }  # fmt: skip
    assert report.items == []


def test_unchanged_rescan_opens_no_file(lora_dir: Path, monkeypatch):
    lora(lora_dir, "a.safetensors")
    (lora_dir / "a.civitai.info").write_text('{"id": 1, "name": "v1"}')
    scan()
    real_open = open

    def guarded_open(file, *args, **kwargs):
        if str(file).startswith(str(lora_dir)):
            raise AssertionError(f"opened {file}")
        return real_open(file, *args, **kwargs)

    def no_hashing(*args, **kwargs):
        raise AssertionError("hashed a file")

    monkeypatch.setattr("builtins.open", guarded_open)
    monkeypatch.setattr("adapters.scanner.hashing.sha256_file", no_hashing)
    report = scan()
    assert (report.unchanged, report.hashed, report.bytes_hashed, report.cached) == (1, 0, 0, 1)


def test_unchanged_rescan_costs_a_fixed_number_of_queries_and_no_writes(lora_dir: Path, django_assert_max_num_queries):
    for index in range(30):
        lora(lora_dir, f"sub{index % 3}/file{index}.safetensors", seed=index)
    scan()
    with django_assert_max_num_queries(6) as captured:
        report = scan()
    assert report.unchanged == 30
    writes = [query["sql"] for query in captured.captured_queries if not query["sql"].startswith("SELECT")]
    assert writes == []


def test_touched_file_is_read_again_and_updated(lora_dir: Path):
    path = lora(lora_dir, "a.safetensors")
    scan()
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))
    report = scan()
    assert (report.hashed, report.updated, report.changed) == (1, 1, 0)
    assert ScannedFile.objects.get().mtime_ns == path.stat().st_mtime_ns


def test_force_rehash_ignores_the_cache(lora_dir: Path):
    lora(lora_dir, "a.safetensors")
    scan()
    report = scan(force_rehash=True)
    assert (report.hashed, report.cached, report.unchanged) == (1, 0, 1)


# --- duplicates and moves ---------------------------------------------------------------------------


def test_copy_is_a_duplicate_of_the_first_file_and_stays_known(lora_dir: Path):
    original = lora(lora_dir, "a.safetensors")
    copy = lora_dir / "z" / "copy.safetensors"
    copy.parent.mkdir()
    shutil.copy(original, copy)
    first = scan()
    adapter = Adapter.objects.get()
    assert adapter.file_path == str(original)
    assert adapter.duplicate_paths == [str(copy)]
    assert first.items[1].to_dict() == {
        "path": str(copy), "status": "duplicate", "adapter_id": str(adapter.pk), "detail": None
    }  # fmt: skip
    again = scan()
    assert (again.unchanged, again.duplicates, again.items) == (2, 0, [])


def test_move_keeps_the_adapter_and_its_curation(lora_dir: Path):
    path = lora(lora_dir, "old_name.safetensors")
    scan()
    adapter = Adapter.objects.get()
    adapter_update(adapter=adapter, changes={"description": "curated", "tags": ["mine"]})
    adapter_set_active(adapter=adapter, active=True, ordinal=4)
    target = lora_dir / "moved" / "new_name.safetensors"
    target.parent.mkdir()
    os.rename(path, target)
    report = scan()
    assert counters(report)["moved"] == 1
    assert report.missing == 0
    assert report.created == 0
    assert [item.to_dict() for item in report.items] == [
        {"path": str(target), "status": "moved", "adapter_id": str(adapter.pk), "detail": None}
    ]
    moved = Adapter.objects.get()
    assert (moved.pk, moved.file_path, moved.sdnext_name) == (adapter.pk, str(target), "new_name")
    assert (moved.description, moved.tags, moved.active, moved.ordinal) == ("curated", ["mine"], True, 4)
    assert moved.missing_since is None


def test_move_keeps_a_locked_sdnext_name(lora_dir: Path):
    path = lora(lora_dir, "a.safetensors")
    scan()
    adapter_update(adapter=Adapter.objects.get(), changes={"sdnext_name": "my_alias"})
    os.rename(path, lora_dir / "b.safetensors")
    scan()
    assert Adapter.objects.get().sdnext_name == "my_alias"


def test_move_of_a_missing_file_clears_missing_since(lora_dir: Path, tmp_path: Path):
    path = lora(lora_dir, "a.safetensors")
    scan()
    parked = tmp_path / "parked.safetensors"
    os.rename(path, parked)
    scan()
    assert Adapter.objects.get().missing_since is not None
    os.rename(parked, lora_dir / "back.safetensors")
    report = scan()
    assert (report.moved, report.missing) == (1, 0)
    assert Adapter.objects.get().missing_since is None


def test_copy_takes_over_when_the_original_is_removed(lora_dir: Path):
    original = lora(lora_dir, "a.safetensors")
    copy = lora_dir / "b.safetensors"
    shutil.copy(original, copy)
    scan()
    original.unlink()
    report = scan()
    assert statuses(report) == [("b.safetensors", "moved")]
    adapter = Adapter.objects.get()
    assert (adapter.file_path, adapter.duplicate_paths) == (str(copy), [])


def test_vanished_copy_is_dropped_from_duplicate_paths(lora_dir: Path):
    original = lora(lora_dir, "a.safetensors")
    copy = lora_dir / "b.safetensors"
    shutil.copy(original, copy)
    scan()
    copy.unlink()
    report = scan()
    assert (report.unchanged, report.missing, report.items) == (1, 0, [])
    adapter = Adapter.objects.get()
    assert (adapter.duplicate_paths, adapter.has_duplicates) == ([], False)


# --- in-place changes ---------------------------------------------------------------------------------


def test_file_replaced_in_place_is_changed(lora_dir: Path):
    path = lora(lora_dir, "a.safetensors")
    scan()
    adapter = Adapter.objects.get()
    adapter_update(adapter=adapter, changes={"notes": "keep me"})
    write_safetensors(path, metadata_of(ss_output_name="a", ss_network_dim="64"), seed=7)
    report = scan()
    assert [item.to_dict() for item in report.items] == [
        {"path": str(path), "status": "changed", "adapter_id": str(adapter.pk), "detail": None}
    ]
    changed = Adapter.objects.get()
    assert (changed.sha256, changed.autov2) == (sha_of(path), sha_of(path)[:10])
    assert (changed.network_dim, changed.notes, changed.pk) == (64, "keep me", adapter.pk)
    assert ScannedFile.objects.get(path=str(path)).sha256 == sha_of(path)


def test_copy_of_the_old_content_becomes_its_own_adapter_after_an_in_place_change(lora_dir: Path):
    path = lora(lora_dir, "a.safetensors")
    copy = lora_dir / "b.safetensors"
    shutil.copy(path, copy)
    scan()
    write_safetensors(path, metadata_of(ss_output_name="a"), seed=9)
    report = scan()
    assert statuses(report) == [("a.safetensors", "changed"), ("b.safetensors", "created")]
    original = Adapter.objects.get(file_path=str(path))
    created = Adapter.objects.get(file_path=str(copy))
    assert original.duplicate_paths == []
    assert created.sha256 == sha_of(copy)


# --- missing files ----------------------------------------------------------------------------------


def test_missing_file_sets_missing_since_and_is_reported_on_every_scan(lora_dir: Path, tmp_path: Path):
    path = lora(lora_dir, "a.safetensors")
    scan()
    adapter = Adapter.objects.get()
    parked = tmp_path / "parked"
    os.rename(path, parked)
    first = scan()
    assert [item.to_dict() for item in first.items] == [
        {"path": str(path), "status": "missing", "adapter_id": str(adapter.pk), "detail": None}
    ]
    since = Adapter.objects.get().missing_since
    assert since is not None
    second = scan()
    assert (second.missing, Adapter.objects.get().missing_since) == (1, since)
    os.rename(parked, path)
    back = scan()
    assert statuses(back) == [("a.safetensors", "updated")]
    assert Adapter.objects.get().missing_since is None


def test_adapters_outside_the_scanned_paths_are_not_missing(lora_dir: Path):
    lora(lora_dir, "one/a.safetensors")
    scan()
    AdapterFactory(file_path=str(lora_dir / "two" / "gone.safetensors"))
    report = scan(paths=[lora_dir / "one"])
    assert (report.missing, report.unchanged) == (0, 1)
    assert report.roots == [str(lora_dir / "one")]
    assert scan().missing == 1


def test_items_are_capped_at_1000(lora_dir: Path):
    Adapter.objects.bulk_create(
        AdapterFactory.build(file_path=str(lora_dir / f"gone{index:04d}.safetensors")) for index in range(1001)
    )
    report = scan(dry_run=True)
    assert report.missing == 1001
    assert len(report.items) == 1000
    assert report.items_truncated is True


# --- exclusions ---------------------------------------------------------------------------------------


def _delete_excluding(path: Path) -> None:
    adapter_delete(adapter=Adapter.objects.get(file_path=str(path)), exclude=True)


def test_excluded_path_is_skipped_before_hashing(lora_dir: Path, monkeypatch):
    path = lora(lora_dir, "a.safetensors")
    scan()
    _delete_excluding(path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # stale cache: would hash
    monkeypatch.setattr("adapters.scanner.hashing.sha256_file", lambda *a, **k: pytest.fail("hashed"))
    report = scan()
    assert [item.to_dict() for item in report.items] == [
        {"path": str(path), "status": "excluded", "adapter_id": None, "detail": None}
    ]
    assert (report.excluded, report.hashed, report.cached, report.files_seen) == (1, 0, 0, 1)
    assert not Adapter.objects.exists()


def test_excluded_hash_skips_a_copy_elsewhere(lora_dir: Path):
    path = lora(lora_dir, "a.safetensors")
    scan()
    _delete_excluding(path)
    shutil.copy(path, lora_dir / "copy.safetensors")
    report = scan()
    assert statuses(report) == [("a.safetensors", "excluded"), ("copy.safetensors", "excluded")]
    assert (report.hashed, report.excluded) == (1, 2)
    assert not Adapter.objects.exists()


def test_include_excluded_recreates_and_lifts_the_exclusions(lora_dir: Path):
    path = lora(lora_dir, "a.safetensors")
    scan()
    _delete_excluding(path)
    report = scan(include_excluded=True)
    assert statuses(report) == [("a.safetensors", "created")]
    assert not ScannedFile.objects.filter(excluded=True).exists()
    assert scan().unchanged == 1


def test_lora_manager_exclude_skips_the_file_before_hashing(lora_dir: Path, monkeypatch):
    path = lora(lora_dir, "a.safetensors")
    (lora_dir / "a.metadata.json").write_text('{"exclude": true, "model_name": "Skip me"}')
    monkeypatch.setattr("adapters.scanner.hashing.sha256_file", lambda *a, **k: pytest.fail("hashed"))
    report = scan()
    assert [item.to_dict() for item in report.items] == [
        {"path": str(path), "status": "excluded", "adapter_id": None, "detail": None}
    ]
    assert (report.hashed, report.cached, report.excluded) == (0, 0, 1)
    monkeypatch.undo()
    included = scan(include_excluded=True)
    assert statuses(included) == [("a.safetensors", "created")]
    assert Adapter.objects.get().name == "Skip me"


# --- sidecars, never-overwrite rules and names ----------------------------------------------------------


def test_changed_sidecar_refreshes_import_fields_but_not_locked_ones(lora_dir: Path):
    lora(lora_dir, "a.safetensors")
    info = lora_dir / "a.civitai.info"
    info.write_text('{"id": 11, "modelId": 5, "name": "v1", "description": "first", "trainedWords": ["one"]}')
    scan()
    adapter = Adapter.objects.get()
    assert (adapter.version, adapter.description, adapter.civitai_version_id) == ("v1", "first", 11)
    adapter_update(adapter=adapter, changes={"description": "mine"})
    info.write_text('{"id": 12, "modelId": 5, "name": "v2", "description": "second", "trainedWords": ["two"]}')
    report = scan()
    assert statuses(report) == [("a.safetensors", "updated")]
    refreshed = Adapter.objects.get()
    assert (refreshed.version, refreshed.civitai_version_id, refreshed.trained_words) == ("v2", 12, ["two"])
    assert refreshed.description == "mine"
    assert refreshed.json_file_path == str(info)


def test_unchanged_sidecars_are_not_read_again(lora_dir: Path, monkeypatch):
    path = lora(lora_dir, "a.safetensors")
    (lora_dir / "a.civitai.info").write_text('{"id": 11, "name": "v1"}')
    scan()
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # the model is read again
    monkeypatch.setattr("adapters.scanner.ingest.read_sidecars", lambda *a: pytest.fail("sidecars re-read"))
    assert scan().updated == 1


def test_sidecar_removed_clears_import_owned_fields_but_keeps_curatable_values(lora_dir: Path):
    lora(lora_dir, "a.safetensors")
    info = lora_dir / "a.civitai.info"
    info.write_text('{"id": 11, "name": "v1", "description": "from civitai"}')
    scan()
    info.unlink()
    report = scan()
    assert report.updated == 1
    adapter = Adapter.objects.get()
    assert (adapter.civitai_version_id, adapter.json_file_path, adapter.sidecars) == (None, None, [])
    assert (adapter.version, adapter.description) == ("v1", "from civitai")  # a source never clears a value


def test_user_owned_fields_survive_rescans(lora_dir: Path):
    lora(lora_dir, "a.safetensors")
    (lora_dir / "a.json").write_text('{"preferred weight": 0.6}')
    scan()
    adapter = Adapter.objects.get()
    assert adapter.weight == 0.6
    adapter_update(adapter=adapter, changes={"weight": 1.5})
    adapter_set_active(adapter=adapter, active=True, ordinal=2)
    (lora_dir / "a.json").write_text('{"preferred weight": 0.8}')
    scan(force_rehash=True)
    kept = Adapter.objects.get()
    assert (kept.weight, kept.active, kept.ordinal, kept.preferred_weight) == (1.5, True, 2, 0.8)


def test_name_collisions_use_the_stem_then_the_hash(lora_dir: Path):
    first = write_safetensors(lora_dir / "a" / "style.safetensors", metadata_of(ss_output_name="Style"), seed=1)
    second = write_safetensors(lora_dir / "b" / "other.safetensors", metadata_of(ss_output_name="Style"), seed=2)
    third = write_safetensors(lora_dir / "c" / "other.safetensors", metadata_of(ss_output_name="Style"), seed=3)
    report = scan()
    names = {Path(a.file_path): a.name for a in Adapter.objects.all()}
    expected_third = f"Style ({sha_of(third)[:8]})"
    assert names == {first: "Style", second: "Style (other)", third: expected_third}
    assert [item.detail for item in report.items] == [
        None,
        "Name already used; stored as 'Style (other)'",
        f"Name already used; stored as '{expected_third}'",
    ]
    assert scan(force_rehash=True).items == []  # the names they already hold: no new warning, no update


def test_locked_name_is_never_renamed(lora_dir: Path):
    write_safetensors(lora_dir / "a.safetensors", metadata_of(ss_output_name="A"), seed=1)
    scan()
    adapter_update(adapter=Adapter.objects.get(), changes={"name": "Locked"})
    write_safetensors(lora_dir / "b.safetensors", metadata_of(ss_output_name="Locked"), seed=2)
    scan(force_rehash=True)
    assert sorted(Adapter.objects.values_list("name", flat=True)) == ["Locked", "Locked (b)"]


# --- dry run and signal ------------------------------------------------------------------------------------


def test_dry_run_writes_nothing_and_reports_what_a_real_run_does(lora_dir: Path, django_assert_max_num_queries):
    a = lora(lora_dir, "a.safetensors")
    lora(lora_dir, "b.safetensors", seed=1)
    shutil.copy(a, lora_dir / "c.safetensors")
    AdapterFactory(file_path=str(lora_dir / "gone.safetensors"))
    with django_assert_max_num_queries(20) as captured:
        dry = scan(dry_run=True)
    writes = [query["sql"] for query in captured.captured_queries if not query["sql"].startswith("SELECT")]
    assert writes == []
    assert (Adapter.objects.count(), ScannedFile.objects.count()) == (1, 0)
    real = scan()
    assert statuses(dry) == statuses(real)
    assert counters(dry) == counters(real)


def test_scan_announces_imported_adapters(lora_dir: Path):
    from adapters.signals import adapters_imported

    lora(lora_dir, "a.safetensors")
    received: list[list[str]] = []

    def receiver(sender, adapter_ids, **kwargs):
        received.append(adapter_ids)

    adapters_imported.connect(receiver, weak=False)
    try:
        scan(dry_run=True)
        scan()
        scan()
    finally:
        adapters_imported.disconnect(receiver)
    assert received == [[str(Adapter.objects.get().pk)]]
