"""Applying adapter records (SPEC 6.10.3): matching, merge, replace, dry-run, the statuses of the report."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.models import Adapter
from backups.archive.records import ADAPTER_DERIVED, row_record
from tests.backups.apply_archives import adapter_members, apply, folders, listing, merged, table_rows
from tests.factories import AdapterFactory
from tests.lora_files import write_safetensors

pytestmark = pytest.mark.django_db
__all__ = ["folders"]

CREATED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
VOLATILE = {"updated_at", "last_ingested_at"}


@pytest.fixture
def local_file(folders):
    return write_safetensors(folders["loras"] / "style.safetensors", seed=1)


def exported(adapter: Adapter, **kwargs) -> dict[str, bytes]:
    """The adapter's members, then the row deleted (the archive is all that is left of it)."""
    members = adapter_members(adapter, **kwargs)
    adapter.delete()
    return members


def test_merge_creates_an_absent_adapter_with_its_id_and_created_at(folders, local_file, tmp_path):
    adapter = AdapterFactory(file_path=str(local_file), tags=["style"], created_at=CREATED_AT)
    Adapter.objects.filter(pk=adapter.pk).update(created_at=CREATED_AT)
    adapter.refresh_from_db()
    adapter_id = adapter.pk
    original = row_record(adapter, exclude=ADAPTER_DERIVED | VOLATILE)
    before = datetime.now(UTC)

    report = apply(tmp_path, exported(adapter))

    row = Adapter.objects.get(pk=adapter_id)
    assert (report["status"], report["created"], report["updated"], report["skipped"]) == ("imported", 1, 0, 0)
    assert report["adapters"] == [{"id": str(adapter_id), "name": adapter.name, "status": "created"}]
    assert row.created_at == CREATED_AT
    assert row.updated_at >= before
    assert row.last_ingested_at >= before
    assert (row.file_path, row.tags, row.tag_index) == (str(local_file), ["style"], "|style|")
    assert row_record(row, exclude=ADAPTER_DERIVED | VOLATILE) == original


def test_merge_fills_empty_unlocked_fields_unions_lists_and_keeps_user_owned(folders, local_file, tmp_path):
    adapter = AdapterFactory(
        file_path=str(local_file), tags=["a"], triggers=["x"], description=None, notes="mine", weight=0.6,
        active=True, ordinal=3, locked_fields=["trained_words"], trained_words=["keep"], base_model=None,
    )  # fmt: skip
    members = adapter_members(
        adapter, tags=["b", "a"], triggers=["y"], description="from archive", notes="theirs", weight=1.5,
        active=False, ordinal=None, locked_fields=[], trained_words=["other"], base_model="SDXL 1.0",
    )  # fmt: skip

    report = apply(tmp_path, members)

    row = Adapter.objects.get(pk=adapter.pk)
    assert report["adapters"][0]["status"] == "updated"
    assert (row.tags, row.triggers, row.description, row.notes, row.base_model) == (
        ["a", "b"], ["x", "y"], "from archive", "mine", "SDXL 1.0",
    )  # fmt: skip
    assert (row.weight, row.active, row.ordinal, row.locked_fields) == (0.6, True, 3, ["trained_words"])
    assert row.trained_words == ["keep"]
    again = apply(tmp_path, members, name="b.zip")
    assert (again["updated"], again["skipped"], again["adapters"][0]["status"]) == (0, 1, "skipped")


def test_replace_overwrites_curation_and_locks_but_keeps_id_and_created_at(folders, local_file, tmp_path):
    adapter = AdapterFactory(file_path=str(local_file), notes="mine", weight=0.6, locked_fields=["notes"])
    Adapter.objects.filter(pk=adapter.pk).update(created_at=CREATED_AT)
    other = AdapterFactory.build(pk=adapter.pk, name=adapter.name, file_path=str(local_file), sha256=adapter.sha256)
    members = adapter_members(other, notes="theirs", weight=1.5, locked_fields=[], created_at="2020-01-01T00:00:00Z")

    report = apply(tmp_path, members, mode="replace")

    row = Adapter.objects.get(pk=adapter.pk)
    assert report["adapters"][0]["status"] == "updated"
    assert (row.notes, row.weight, row.locked_fields, row.created_at) == ("theirs", 1.5, [], CREATED_AT)


@pytest.mark.parametrize("match", ["sha256", "name_version"])
def test_matches_by_sha256_then_name_and_version(folders, local_file, tmp_path, match):
    local = AdapterFactory(file_path=str(local_file), name="Style", version="v1", description=None)
    archived = AdapterFactory.build(
        name="Style" if match == "name_version" else "Other",
        version="v1",
        sha256=local.sha256 if match == "sha256" else "f" * 64,
        file_path=str(local_file),
        description="filled",
    )

    report = apply(tmp_path, adapter_members(archived))

    assert Adapter.objects.count() == 1
    assert report["adapters"] == [{"id": str(local.pk), "name": "Style", "status": "updated"}]
    assert Adapter.objects.get().description == "filled"


def test_matched_by_id_even_when_renamed(folders, local_file, tmp_path):
    local = AdapterFactory(file_path=str(local_file), name="Renamed", sha256="e" * 64)
    archived = AdapterFactory.build(pk=local.pk, name="Original", sha256="d" * 64, file_path=str(local_file))
    report = apply(tmp_path, adapter_members(archived))
    assert report["adapters"][0] == {"id": str(local.pk), "name": "Renamed", "status": "skipped"}


def test_dry_run_reports_planned_statuses_and_writes_nothing(folders, local_file, tmp_path):
    kept = AdapterFactory(file_path=str(local_file), description=None)
    gone = AdapterFactory(file_path=str(folders["loras"] / "gone.safetensors"))
    data = write_safetensors(tmp_path / "gone.safetensors", seed=2).read_bytes()
    members = merged(
        adapter_members(kept, description="new"),
        exported(gone, file=data, sidecars={"gone.civitai.info": b"{}"}, preview=("png", b"\x89PNG")),
    )
    rows, files = table_rows(), listing(folders["data"], folders["loras"])

    report = apply(tmp_path, members, mode="dry-run")

    assert report["status"] == "validated"
    assert sorted(item["status"] for item in report["adapters"]) == ["would_create", "would_update"]
    assert (report["created"], report["updated"]) == (1, 1)
    assert table_rows() == rows
    assert listing(folders["data"], folders["loras"]) == files
    assert not folders["tmp"].exists() or not any(folders["tmp"].iterdir())


def test_no_embedded_file_and_none_local_is_skipped_with_a_warning(folders, tmp_path):
    adapter = AdapterFactory(file_path=str(folders["loras"] / "absent.safetensors"))
    report = apply(tmp_path, exported(adapter))
    assert report["adapters"][0]["status"] == "skipped"
    assert report["warnings"] == [f"File not available locally: {folders['loras'] / 'absent.safetensors'}"]
    assert not Adapter.objects.exists()


def test_a_matched_record_without_a_local_file_is_still_merged(folders, tmp_path):
    adapter = AdapterFactory(file_path=str(folders["loras"] / "absent.safetensors"), notes=None)
    report = apply(tmp_path, adapter_members(adapter, notes="n"))
    assert report["adapters"][0]["status"] == "updated"
    assert report["warnings"] == []
