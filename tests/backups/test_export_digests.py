"""A LoRA file's SHA-256 in the manifest comes from the scan cache while the file is as the scan saw it (size and
mtime), and is computed again otherwise; a file that changes while it is copied abandons the archive."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from django.utils import timezone

from adapters.models import ScannedFile
from backups.archive import format as fmt
from backups.archive.build import FileChangedError, archive_write
from backups.archive.format import ArchiveOptions
from tests.backups import library as fixtures
from tests.backups.library import Library, read_archive, verify_members

library, media = fixtures.library, fixtures.media

FILES = ArchiveOptions(loras=True, lora_files=True, lora_metadata=True)
SENTINEL = "f" * 64  # a digest no file here has: seeing it in the manifest proves the cache's was used


def cache_row(path: Path, *, sha256: str, size_delta: int = 0, mtime_delta: int = 0) -> ScannedFile:
    status = path.stat()
    return ScannedFile.objects.create(
        path=str(path), size=status.st_size + size_delta, mtime_ns=status.st_mtime_ns + mtime_delta, sha256=sha256,
        last_seen_at=timezone.now(),
    )  # fmt: skip


def file_entry(manifest: dict, adapter) -> dict:
    member = fmt.adapter_file_member(str(adapter.pk), Path(adapter.file_path).name)
    return next(entry for entry in manifest["members"] if entry["path"] == member)


def test_digest_of_an_unchanged_file_comes_from_the_scan_cache(library: Library):
    adapter = library.adapters[0]
    cache_row(Path(adapter.file_path), sha256=SENTINEL)
    target = io.BytesIO()
    archive_write(target, FILES, kind="export")
    _archive, manifest = read_archive(target.getvalue())
    assert file_entry(manifest, adapter)["sha256"] == SENTINEL
    other = library.adapters[1]  # no cache row: hashed while written
    assert file_entry(manifest, other)["sha256"] == hashlib.sha256(Path(other.file_path).read_bytes()).hexdigest()


@pytest.mark.parametrize("change", [{"size_delta": 1}, {"mtime_delta": 1}], ids=["size", "mtime"])
def test_file_changed_since_the_scan_is_hashed_again(library: Library, change: dict):
    adapter = library.adapters[0]
    cache_row(Path(adapter.file_path), sha256=SENTINEL, **change)
    target = io.BytesIO()
    archive_write(target, FILES, kind="export")
    archive, manifest = read_archive(target.getvalue())
    verify_members(archive, manifest)  # every digest is the bytes' own
    assert file_entry(manifest, adapter)["sha256"] == hashlib.sha256(Path(adapter.file_path).read_bytes()).hexdigest()


class Appender:
    """Progress that appends to ``path`` once its member has been copied (the file changes during the copy)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done = False

    def planned(self, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int, member: str) -> None:
        if not self.done and member.endswith(self.path.name):
            self.done = True
            with self.path.open("ab") as handle:
                handle.write(b"more")

    def cancelled(self) -> bool:
        return False


def test_file_changed_while_copied_with_a_cached_digest_abandons_the_archive(library: Library):
    path = Path(library.adapters[0].file_path)
    cache_row(path, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    with pytest.raises(FileChangedError, match="changed while it was being archived"):
        archive_write(io.BytesIO(), FILES, kind="backup", progress=Appender(path))


def test_file_changed_while_copied_without_a_cached_digest_is_listed_as_copied(library: Library):
    path = Path(library.adapters[0].file_path)
    target = io.BytesIO()
    archive_write(target, FILES, kind="export", progress=Appender(path))
    archive, manifest = read_archive(target.getvalue())
    verify_members(archive, manifest)  # the digest is the copied bytes' (hashed while written)
