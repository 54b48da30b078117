"""Where an archive's files go (SPEC 6.10.3) and what a refused or failed apply leaves behind: nothing."""

from __future__ import annotations

import pytest

from adapters.models import Adapter
from backups.archive.apply import part_write
from backups.archive.format import ArchiveError
from tests.backups.apply_archives import adapter_members, apply, dump, folders, listing, merged, sha, table_rows
from tests.factories import AdapterFactory
from tests.lora_files import write_safetensors

pytestmark = pytest.mark.django_db
__all__ = ["folders"]


@pytest.fixture
def model_bytes(tmp_path):
    return write_safetensors(tmp_path / "src" / "m.safetensors", seed=7).read_bytes()


def exported(adapter, **kwargs):
    members = adapter_members(adapter, **kwargs)
    adapter.delete()
    return members


def test_file_goes_back_to_its_original_path_with_sidecars_and_preview(folders, model_bytes, tmp_path):
    original = folders["loras"] / "sub" / "style.safetensors"
    adapter = AdapterFactory(
        file_path=str(original),
        sha256=sha(model_bytes),
        json_file_path=str(original.with_suffix(".civitai.info")),
        sidecars=[{"kind": "civitai_info", "path": str(original.with_suffix(".civitai.info")), "size": 2}],
        preview_path=str(original.with_suffix(".preview.png")),
    )
    members = exported(
        adapter, file=model_bytes, sidecars={"style.civitai.info": b"{}"}, preview=("png", b"\x89PNG-preview")
    )

    report = apply(tmp_path, members)

    row = Adapter.objects.get()
    assert report["created"] == 1
    assert row.file_path == str(original)
    assert original.read_bytes() == model_bytes
    assert row.json_file_path == str(original.with_suffix(".civitai.info"))
    assert [entry["path"] for entry in row.sidecars] == [row.json_file_path]
    assert (original.parent / "style.civitai.info").read_bytes() == b"{}"
    assert row.preview_path == str(original.with_suffix(".preview.png"))
    assert original.with_suffix(".preview.png").read_bytes() == b"\x89PNG-preview"
    assert not (folders["tmp"] / "import-test").exists()


def test_file_from_outside_the_lora_folders_goes_to_the_import_folder(folders, model_bytes, tmp_path):
    adapter = AdapterFactory(file_path="/elsewhere/My Style!.safetensors", sha256=sha(model_bytes))
    apply(tmp_path, exported(adapter, file=model_bytes, sidecars={"My Style!.json": b"{}"}))
    target = folders["loras"] / "imported" / "My Style_.safetensors"
    row = Adapter.objects.get()
    assert row.file_path == str(target)
    assert target.read_bytes() == model_bytes
    assert (target.parent / "My Style_.json").read_bytes() == b"{}"


def test_an_existing_file_with_the_same_content_is_reused(folders, model_bytes, tmp_path):
    existing = folders["loras"] / "imported" / "m.safetensors"
    existing.parent.mkdir(parents=True)
    existing.write_bytes(model_bytes)
    adapter = AdapterFactory(file_path="/elsewhere/m.safetensors", sha256=sha(model_bytes))
    before = listing(folders["loras"])
    apply(tmp_path, exported(adapter, file=model_bytes))
    assert Adapter.objects.get().file_path == str(existing)
    assert listing(folders["loras"]) == before


def test_an_existing_file_with_other_content_gets_the_hash_suffix_and_is_kept(folders, model_bytes, tmp_path):
    existing = folders["loras"] / "imported" / "m.safetensors"
    existing.parent.mkdir(parents=True)
    existing.write_bytes(b"other content")
    digest = sha(model_bytes)
    adapter = AdapterFactory(file_path="/elsewhere/m.safetensors", sha256=digest)
    apply(tmp_path, exported(adapter, file=model_bytes))
    target = existing.with_name(f"m-{digest[:8]}.safetensors")
    assert Adapter.objects.get().file_path == str(target)
    assert target.read_bytes() == model_bytes
    assert existing.read_bytes() == b"other content"


def test_an_existing_sidecar_is_never_overwritten(folders, model_bytes, tmp_path):
    original = folders["loras"] / "style.safetensors"
    (folders["loras"] / "style.json").write_bytes(b'{"mine": 1}')
    adapter = AdapterFactory(file_path=str(original), sha256=sha(model_bytes))
    report = apply(tmp_path, exported(adapter, file=model_bytes, sidecars={"style.json": b"{}"}))
    assert (folders["loras"] / "style.json").read_bytes() == b'{"mine": 1}'
    assert report["warnings"] == [f"Not overwriting existing file: {folders['loras'] / 'style.json'}"]


def test_a_file_already_local_inside_a_folder_is_used_without_an_embedded_copy(folders, tmp_path):
    path = write_safetensors(folders["loras"] / "here.safetensors", seed=3)
    adapter = AdapterFactory(file_path=str(path))
    report = apply(tmp_path, exported(adapter))
    assert (report["created"], Adapter.objects.get().file_path) == (1, str(path))


@pytest.mark.parametrize(
    ("member", "record", "message"),
    [
        ("adapter", {"weight": 9}, "weight: Ensure this value is less than or equal to 5.0."),
        ("adapter", {"sdnext_name": "a:b"}, "sdnext_name: sdnext_name must not contain"),
        ("adapter", {"name": None}, "name: This field may not be null."),
        ("adapter", {"tags": ["x" * 65]}, "tags: item 0: Each tag must be 1..64 characters."),
        ("adapter", {"file_member": "adapters/x/files/evil"}, "file_member: Not a member of this archive."),
        ("jobs", {"status": "exploded"}, "status:"),
    ],
)
def test_an_invalid_record_anywhere_refuses_the_archive_and_writes_nothing(
    folders, model_bytes, tmp_path, member, record, message
):
    good = AdapterFactory(file_path=str(folders["loras"] / "good.safetensors"), sha256=sha(model_bytes))
    bad = AdapterFactory(file_path=str(folders["loras"] / "bad.safetensors"))
    bad_member = f"adapters/{bad.pk}/adapter.json"
    job = {"id": "5d6e0000-0000-4000-8000-000000000001", "kind": "generation", "mode": "sdnext", "prompt": "p"}
    members = merged(
        exported(good, file=model_bytes),
        exported(bad, **(record if member == "adapter" else {})),
        {"generations/jobs.jsonl": dump([{**job, **(record if member == "jobs" else {})}])},
    )
    rows, files = table_rows(), listing(folders["data"], folders["loras"])

    with pytest.raises(ArchiveError) as raised:
        apply(tmp_path, members)

    kind, name = ("adapter", bad_member) if member == "adapter" else (
        "generation job", "generations/jobs.jsonl"
    )  # fmt: skip
    assert str(raised.value).startswith(f"Invalid {kind} record in {name}: {message}")
    assert table_rows() == rows
    assert listing(folders["data"], folders["loras"]) == files


def test_a_failure_during_the_apply_leaves_no_rows_and_no_files(folders, model_bytes, tmp_path, monkeypatch):
    adapter = AdapterFactory(file_path=str(folders["loras"] / "x.safetensors"), sha256=sha(model_bytes))
    members = exported(adapter, file=model_bytes, sidecars={"x.json": b"{}"})
    rows, files = table_rows(), listing(folders["data"], folders["loras"])

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(part_write, "samples_write", explode)
    with pytest.raises(RuntimeError):
        apply(tmp_path, members)

    assert table_rows() == rows
    assert listing(folders["data"], folders["loras"]) == files


def test_a_matched_adapter_whose_file_is_gone_gets_it_back(folders, model_bytes, tmp_path):
    original = folders["loras"] / "lost.safetensors"
    adapter = AdapterFactory(file_path=str(original), sha256=sha(model_bytes), notes="mine")
    report = apply(tmp_path, adapter_members(adapter, file=model_bytes, notes="theirs"))
    row = Adapter.objects.get()
    assert (report["adapters"][0]["status"], row.pk, row.notes) == ("updated", adapter.pk, "mine")
    assert original.read_bytes() == model_bytes


def test_replace_keeps_the_facts_of_the_rows_own_different_file(folders, model_bytes, tmp_path):
    path = write_safetensors(folders["loras"] / "mine.safetensors", seed=9)
    adapter = AdapterFactory(file_path=str(path), name="Same", version="v1", sha256="a" * 64, notes=None)
    archived = AdapterFactory.build(name="Same", version="v1", sha256="b" * 64, file_path=str(path), notes="theirs")
    apply(tmp_path, adapter_members(archived), mode="replace")
    row = Adapter.objects.get()
    assert (row.pk, row.sha256, row.notes, row.file_path) == (adapter.pk, "a" * 64, "theirs", str(path))


def test_staged_bytes_are_reported_to_the_progress(folders, model_bytes, tmp_path):
    from backups.archive.apply import archive_apply
    from tests.backups.apply_archives import validated

    adapter = AdapterFactory(file_path=str(folders["loras"] / "p.safetensors"), sha256=sha(model_bytes))
    archive = validated(tmp_path / "p.zip", exported(adapter, file=model_bytes))
    seen = []

    class Progress:
        def planned(self, total_bytes):
            pass

        def advance(self, nbytes, member):
            seen.append((nbytes, member))

        def cancelled(self):
            return False

    archive_apply(archive, mode="merge", job_id="p", progress=Progress())
    assert sum(n for n, _member in seen) == len(model_bytes)
