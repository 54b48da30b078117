"""Import validation (SPEC 6.10.2 steps 2-8): every broken or malicious archive refused with its exact message."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import time
import zipfile
from collections import namedtuple
from pathlib import Path

import pytest

from backups.archive.format import MANIFEST, ArchiveError, ArchiveOptions
from backups.archive.progress import ArchiveCancelled
from backups.archive.validate import archive_validate
from tests.backups.archives import GOOD, make_archive, manifest_for, with_member
from tests.backups.forge import DEFLATED, MiB, RawMember, manifest_member, raw_deflate, raw_zip, zeros_bomb
from tests.processes import REPO_ROOT


def refused(path: Path) -> str:
    with pytest.raises(ArchiveError) as caught:
        archive_validate(path)
    return str(caught.value)


# --- a valid archive --------------------------------------------------------------------------------


def test_valid_archive_gives_its_manifest_and_members(tmp_path):
    validated = archive_validate(make_archive(tmp_path / "ok.zip", GOOD))
    assert validated.manifest["format"] == "loraforge-archive"
    assert list(validated.members) == list(GOOD)
    entry = validated.members["adapters/a/adapter.json"]
    assert entry.size == len(GOOD["adapters/a/adapter.json"])
    assert entry.sha256 == hashlib.sha256(GOOD["adapters/a/adapter.json"]).hexdigest()
    assert validated.json("adapters/a/adapter.json") == {"name": "a"}


def test_progress_counts_every_member_byte(tmp_path):
    class Recorder:
        def __init__(self):
            self.planned_bytes, self.advanced = None, 0

        def planned(self, total_bytes):
            self.planned_bytes = total_bytes

        def advance(self, nbytes, member):
            self.advanced += nbytes

        def cancelled(self):
            return False

    recorder = Recorder()
    archive_validate(make_archive(tmp_path / "ok.zip", GOOD), progress=recorder)
    assert recorder.planned_bytes == recorder.advanced == sum(len(data) for data in GOOD.values())


def test_cancel_between_chunks_stops_the_validation(tmp_path):
    Cancelling = namedtuple("Cancelling", "planned advance cancelled")
    progress = Cancelling(lambda total: None, lambda n, member: None, lambda: True)
    with pytest.raises(ArchiveCancelled):
        archive_validate(make_archive(tmp_path / "ok.zip", GOOD), progress=progress)


# --- step 2 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x05\x06" + b"\0" * 10, os.urandom(4096)])
def test_not_a_zip(tmp_path, content):
    path = tmp_path / "x.zip"
    path.write_bytes(content)
    assert refused(path) == "Not a ZIP archive"


def test_truncated_zip_is_not_a_zip(tmp_path):
    data = make_archive(tmp_path / "ok.zip", GOOD).read_bytes()
    path = tmp_path / "cut.zip"
    path.write_bytes(data[: len(data) // 2])
    assert refused(path) == "Not a ZIP archive"


def test_too_many_members(tmp_path, settings):
    settings.LORAFORGE_IMPORT_MAX_MEMBERS = 3
    members = {f"m/{index}": b"x" for index in range(3)}  # + manifest = 4
    assert refused(make_archive(tmp_path / "many.zip", members)) == "Archive has too many members"


def test_member_count_is_walked_not_taken_from_the_end_record(tmp_path, settings):
    settings.LORAFORGE_IMPORT_MAX_MEMBERS = 3
    data = bytearray(make_archive(tmp_path / "many.zip", {f"m/{index}": b"x" for index in range(5)}).read_bytes())
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = (1).to_bytes(2, "little") * 2  # the end record claims one member
    path = tmp_path / "lying.zip"
    path.write_bytes(bytes(data))
    assert refused(path) == "Archive has too many members"


def test_exactly_the_member_limit_passes(tmp_path, settings):
    settings.LORAFORGE_IMPORT_MAX_MEMBERS = 3
    archive_validate(make_archive(tmp_path / "ok.zip", GOOD))  # 2 + manifest


# --- step 3: names --------------------------------------------------------------------------------------

ESCAPING = ["../../etc/passwd", "adapters/../../x", "/etc/passwd", "C:/Windows/x", "c:x", "adapters\\..\\x",
            "a/./b", "./a", "a/..", "a//b", ".."]  # fmt: skip


@pytest.mark.parametrize("name", ESCAPING)
def test_escaping_names_are_refused(tmp_path, name):
    assert refused(with_member(tmp_path, name)) == f"Archive member path escapes the archive root: {name}"


def test_nul_in_a_name_is_refused_and_shown_escaped(tmp_path):
    path = raw_zip(tmp_path / "nul.zip", [RawMember("adapters/a\x00.json", b"x"), manifest_member({})])
    assert refused(path) == "Archive member path escapes the archive root: adapters/a\\x00.json"


def test_empty_name_is_refused(tmp_path):
    path = raw_zip(tmp_path / "empty.zip", [RawMember("", b"x"), manifest_member({})])
    assert refused(path) == "Archive member path escapes the archive root: "


def test_dots_inside_names_are_fine(tmp_path):
    members = {**GOOD, "adapters/a/files/my..lora.v1.safetensors": b"x", "adapters/a/sidecars/_.hidden": b"y"}
    archive_validate(make_archive(tmp_path / "ok.zip", members))


def test_duplicate_names_are_refused(tmp_path):
    path = raw_zip(
        tmp_path / "dup.zip",
        [RawMember("adapters/a/adapter.json", b"1"), RawMember("adapters/a/adapter.json", b"2"), manifest_member({})],
    )
    assert refused(path) == "Duplicate archive member: adapters/a/adapter.json"


def test_names_equal_after_nfc_are_duplicates(tmp_path):
    composed, decomposed = "adapters/caf\u00e9.json", "adapters/cafe\u0301.json"
    path = raw_zip(tmp_path / "nfc.zip", [RawMember(composed, b"1"), RawMember(decomposed, b"2"), manifest_member({})])
    assert refused(path) == f"Duplicate archive member: {decomposed}"


# --- step 4: kinds -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [stat.S_IFLNK, stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK])
def test_symlinks_and_special_files_are_refused(tmp_path, kind):
    path = with_member(tmp_path, "adapters/a/files/link", b"/etc/passwd", external_attr=(kind | 0o777) << 16)
    assert refused(path) == "Archive member is a symbolic link: adapters/a/files/link"


def test_regular_unix_files_pass(tmp_path):
    archive_validate(with_member(tmp_path, "adapters/a/files/f", b"x", external_attr=(stat.S_IFREG | 0o644) << 16))


def test_encrypted_member_is_refused(tmp_path):
    path = raw_zip(tmp_path / "enc.zip", [RawMember("adapters/a/adapter.json", b"x", flags=0x801), manifest_member({})])
    assert refused(path) == "Encrypted archives are not supported"


def test_compression_method_loraforge_never_writes_is_refused(tmp_path):
    path = with_member(tmp_path, "adapters/a/x.json", b"x" * 100, compress_type=zipfile.ZIP_BZIP2)
    assert refused(path) == "Not a LoRAForge archive"


# --- step 5: declared sizes -------------------------------------------------------------------------------


def test_member_declared_too_large(tmp_path, settings):
    settings.LORAFORGE_IMPORT_MAX_MEMBER_MB = 1
    path = make_archive(tmp_path / "big.zip", {**GOOD, "adapters/a/files/f": b"\1" * (MiB + 1)})
    assert refused(path) == "Archive is too large when extracted"


def test_total_declared_too_large(tmp_path, settings):
    settings.LORAFORGE_IMPORT_MAX_TOTAL_MB = 1
    members = {**GOOD, "a/1": os.urandom(MiB // 2), "a/2": os.urandom(MiB // 2)}
    assert refused(make_archive(tmp_path / "big.zip", members)) == "Archive is too large when extracted"


def test_headers_declaring_many_gib_are_too_large_before_anything_is_read(tmp_path, settings):
    settings.LORAFORGE_IMPORT_MAX_MEMBER_MB = 1024
    bomb = RawMember("adapters/a/files/f", zeros_bomb(4), method=DEFLATED, file_size=2**32 - 1)
    path = raw_zip(tmp_path / "bomb.zip", [bomb, manifest_member({})])
    assert refused(path) == "Archive is too large when extracted"


def test_suspicious_ratio_of_a_real_compressible_member(tmp_path):
    members = {**GOOD, "adapters/a/files/zeros.bin": b"\0" * (8 * MiB)}  # deflates ~1000:1
    assert (
        refused(make_archive(tmp_path / "ratio.zip", members))
        == "Suspicious compression ratio for adapters/a/files/zeros.bin"
    )


def test_ratio_is_not_checked_for_members_up_to_1_mib(tmp_path):
    archive_validate(make_archive(tmp_path / "ok.zip", {**GOOD, "adapters/a/zeros.json": b"\0" * MiB}))


def test_ratio_within_the_limit_passes(tmp_path, settings):
    settings.LORAFORGE_IMPORT_MAX_RATIO = 2000
    archive_validate(make_archive(tmp_path / "ok.zip", {**GOOD, "adapters/a/files/zeros.bin": b"\0" * (8 * MiB)}))


def test_not_enough_disk_space(tmp_path, monkeypatch, settings):
    seen = []

    def disk_usage(path):
        seen.append(Path(path))
        return namedtuple("usage", "total used free")(10 * 1024 * MiB, 0, 1024 * MiB + 10)  # 1 GiB + 10 bytes

    monkeypatch.setattr("backups.archive.validate.shutil.disk_usage", disk_usage)
    assert refused(make_archive(tmp_path / "ok.zip", GOOD)) == "Not enough disk space"
    assert seen == [Path(settings.DATA_DIR)]


def test_enough_disk_space_is_total_plus_1_gib(tmp_path, monkeypatch):
    path = make_archive(tmp_path / "ok.zip", GOOD)
    with zipfile.ZipFile(path) as archive:
        total = sum(info.file_size for info in archive.infolist())
    usage = namedtuple("usage", "total used free")(0, 0, total + 1024 * MiB)
    monkeypatch.setattr("backups.archive.validate.shutil.disk_usage", lambda path: usage)
    archive_validate(path)


# --- step 6: the manifest -------------------------------------------------------------------------------


def test_manifest_missing(tmp_path):
    assert refused(make_archive(tmp_path / "x.zip", GOOD, with_manifest=False)) == "manifest.json is missing"


@pytest.mark.parametrize(
    "body", [b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"null", b'{"format": NaN}'], ids=str
)
def test_manifest_not_valid_json_or_not_an_object(tmp_path, body):
    assert refused(make_archive(tmp_path / "x.zip", GOOD, manifest=body)) == "manifest.json is not valid JSON"


def test_manifest_larger_than_64_mib_is_not_valid_json(tmp_path, monkeypatch):
    monkeypatch.setattr("backups.archive.validate.MANIFEST_MAX_BYTES", 100)
    manifest = manifest_for(GOOD, padding="x" * 100)
    assert refused(make_archive(tmp_path / "x.zip", GOOD, manifest=manifest)) == "manifest.json is not valid JSON"


@pytest.mark.parametrize("fmt", ["zip", None, 1, "LORAFORGE-ARCHIVE"])
def test_not_a_loraforge_archive(tmp_path, fmt):
    manifest = manifest_for(GOOD, format=fmt)
    assert refused(make_archive(tmp_path / "x.zip", GOOD, manifest=manifest)) == "Not a LoRAForge archive"


@pytest.mark.parametrize(
    ("version", "shown"), [(2, "2"), (0, "0"), ("1", '"1"'), (True, "true"), (None, "null"), (1.5, "1.5")]
)
def test_unsupported_format_version(tmp_path, version, shown):
    manifest = manifest_for(GOOD, format_version=version)
    assert refused(make_archive(tmp_path / "x.zip", GOOD, manifest=manifest)) == (
        f"Unsupported archive format version {shown}"
    )


@pytest.mark.parametrize(
    "members",
    [
        None,
        {"a": 1},
        ["adapters/a/adapter.json"],
        [{"path": "adapters/a/adapter.json", "size": -1, "sha256": "0" * 64}],
        [{"path": "adapters/a/adapter.json", "size": True, "sha256": "0" * 64}],
        [{"path": "adapters/a/adapter.json", "size": 1, "sha256": "xyz"}],
        [{"path": 5, "size": 1, "sha256": "0" * 64}],
        [{"path": MANIFEST, "size": 1, "sha256": "0" * 64}],
    ],
    ids=str,
)
def test_malformed_member_entries_make_the_manifest_invalid(tmp_path, members):
    manifest = {**manifest_for(GOOD), "members": members}
    assert refused(make_archive(tmp_path / "x.zip", GOOD, manifest=manifest)) == "manifest.json is not valid JSON"


def test_repeated_manifest_entry_makes_it_invalid(tmp_path):
    manifest = manifest_for(GOOD)
    manifest["members"].append(manifest["members"][0])
    assert refused(make_archive(tmp_path / "x.zip", GOOD, manifest=manifest)) == "manifest.json is not valid JSON"


# --- step 7: listing --------------------------------------------------------------------------------------


def test_member_not_listed(tmp_path):
    members = {**GOOD, "extra/evil.sh": b"#!/bin/sh"}
    path = make_archive(tmp_path / "x.zip", members, manifest=manifest_for(GOOD))
    assert refused(path) == "Archive member not listed in manifest: extra/evil.sh"


def test_directory_entry_is_not_listed(tmp_path):
    path = with_member(tmp_path, "adapters/a/", b"")
    manifest_path = tmp_path / "dir.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(manifest_path, "w") as target:
        for info in source.infolist():
            data = json.dumps(manifest_for(GOOD)).encode() if info.filename == MANIFEST else source.read(info)
            target.writestr(info, data)
    assert refused(manifest_path) == "Archive member not listed in manifest: adapters/a/"


def test_listed_member_missing(tmp_path):
    manifest = manifest_for({**GOOD, "adapters/b/adapter.json": b"{}"})
    assert refused(make_archive(tmp_path / "x.zip", GOOD, manifest=manifest)) == (
        "Manifest lists a missing member: adapters/b/adapter.json"
    )


# --- step 8: contents -------------------------------------------------------------------------------------


def test_checksum_mismatch(tmp_path):
    manifest = manifest_for({**GOOD, "config/backends.json": b"{}"})  # same size, other bytes
    assert refused(make_archive(tmp_path / "x.zip", GOOD, manifest=manifest)) == (
        "Checksum mismatch for config/backends.json"
    )


def test_manifest_size_smaller_than_the_member_is_larger_than_declared(tmp_path):
    manifest = manifest_for({**GOOD, "config/backends.json": b"["})
    assert refused(make_archive(tmp_path / "x.zip", GOOD, manifest=manifest)) == (
        "Archive member larger than declared: config/backends.json"
    )


def test_member_shorter_than_the_manifest_says_is_a_checksum_mismatch(tmp_path):
    manifest = manifest_for({**GOOD, "config/backends.json": b"[ ]"})
    assert refused(make_archive(tmp_path / "x.zip", GOOD, manifest=manifest)) == (
        "Checksum mismatch for config/backends.json"
    )


def test_byte_flipped_in_a_stored_member_is_caught(tmp_path):
    data = {**GOOD, "adapters/a/files/f.safetensors": b"A" * 1000}
    raw = bytearray(make_archive(tmp_path / "x.zip", data, compression=zipfile.ZIP_STORED).read_bytes())
    raw[raw.find(b"A" * 1000) + 500] = ord("B")
    path = tmp_path / "flipped.zip"
    path.write_bytes(bytes(raw))
    assert refused(path) == "Checksum mismatch for adapters/a/files/f.safetensors"


def test_patched_central_directory_size_smaller_than_the_data(tmp_path):
    """A stored member's real size is 5000 bytes; the central directory and the manifest both say 1000."""
    real = b"Z" * 5000
    member = RawMember("adapters/a/files/f.bin", real, file_size=1000)
    manifest = manifest_member({**GOOD}, members=[{"path": "adapters/a/files/f.bin", "size": 1000,
                                                   "sha256": hashlib.sha256(real[:1000]).hexdigest()}])  # fmt: skip
    path = raw_zip(tmp_path / "lying.zip", [member, manifest])
    assert refused(path) == "Archive member larger than declared: adapters/a/files/f.bin"


def _bomb_archive(tmp_path: Path, gib: int) -> Path:
    """A deflated member of ``gib`` GiB of zeros whose headers and manifest claim 1000 bytes (ratio check passes)."""
    name = "adapters/a/files/bomb.safetensors"
    member = RawMember(name, zeros_bomb(gib * 1024), method=DEFLATED, file_size=1000, crc=0)
    entry = {"path": name, "size": 1000, "sha256": hashlib.sha256(b"\0" * 1000).hexdigest()}
    return raw_zip(tmp_path / "bomb.zip", [member, manifest_member({}, members=[entry])])


def test_zip_bomb_with_lying_headers_fails_fast(tmp_path):
    path = _bomb_archive(tmp_path, 4)
    started = time.monotonic()
    assert refused(path) == "Archive member larger than declared: adapters/a/files/bomb.safetensors"
    assert time.monotonic() - started < 5


BOMB_CHILD = """
import resource, sys, django
django.setup()
from pathlib import Path
from backups.archive.format import ArchiveError
from backups.archive.validate import archive_validate
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    archive_validate(Path(sys.argv[1]))
except ArchiveError as exc:
    print(exc)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_zip_bomb_is_refused_with_bounded_memory(tmp_path):
    """8 GiB of zeros behind headers that claim 1000 bytes: refused while streaming, peak RSS grows < 32 MiB."""
    path = _bomb_archive(tmp_path, 8)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.run(
        [sys.executable, "-c", BOMB_CHILD, str(path)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    message, grown_kib = child.stdout.strip().splitlines()
    assert message == "Archive member larger than declared: adapters/a/files/bomb.safetensors"
    assert int(grown_kib) < 32 * 1024


def test_honest_bomb_is_a_suspicious_ratio(tmp_path):
    name = "adapters/a/files/bomb.bin"
    member = RawMember(name, zeros_bomb(64), method=DEFLATED, file_size=64 * MiB, crc=0)
    path = raw_zip(tmp_path / "bomb.zip", [member, manifest_member({}, members=[])])
    assert refused(path) == f"Suspicious compression ratio for {name}"


def test_corrupt_deflate_data_is_a_checksum_mismatch(tmp_path):
    name = "adapters/a/adapter.json"
    member = RawMember(name, b"\xff" * 50, method=DEFLATED, file_size=20, crc=0)
    entry = {"path": name, "size": 20, "sha256": "0" * 64}
    path = raw_zip(tmp_path / "corrupt.zip", [member, manifest_member({}, members=[entry])])
    assert refused(path) == f"Checksum mismatch for {name}"


def test_wrong_crc_with_the_right_sha256_is_a_checksum_mismatch(tmp_path):
    name, data = "adapters/a/adapter.json", b'{"x": 1}'
    member = RawMember(name, raw_deflate(data), method=DEFLATED, file_size=len(data), crc=12345)
    path = raw_zip(tmp_path / "crc.zip", [member, manifest_member({name: data})])
    assert refused(path) == f"Checksum mismatch for {name}"


def test_big_stored_member_is_validated_at_speed(tmp_path):
    """Reading every member is the import's cost: 256 MiB stored validates well above 100 MiB/s."""
    path = tmp_path / "big.zip"
    chunk = os.urandom(MiB)
    digest = hashlib.sha256()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        with archive.open(zipfile.ZipInfo("adapters/a/files/big.safetensors"), "w", force_zip64=True) as sink:
            for _ in range(256):
                sink.write(chunk)
                digest.update(chunk)
        entry = {"path": "adapters/a/files/big.safetensors", "size": 256 * MiB, "sha256": digest.hexdigest()}
        archive.writestr(MANIFEST, json.dumps({**manifest_for({}), "members": [entry]}))
    started = time.monotonic()
    archive_validate(path)
    assert 256 / (time.monotonic() - started) > 100


def test_archive_options_are_untouched_by_validation(tmp_path):
    manifest = manifest_for(GOOD, options=ArchiveOptions().manifest_options())
    assert archive_validate(make_archive(tmp_path / "x.zip", GOOD, manifest=manifest)).manifest["options"]["loras"]


def test_manifest_that_inflates_past_its_declared_size_is_caught(tmp_path):
    manifest = RawMember(MANIFEST, zeros_bomb(1024), method=DEFLATED, file_size=100, crc=0)
    path = raw_zip(tmp_path / "manifest-bomb.zip", [manifest])
    assert refused(path) == "Archive member larger than declared: manifest.json"


def test_manifest_with_a_wrong_crc_is_a_checksum_mismatch(tmp_path):
    body = json.dumps(manifest_for({})).encode()
    path = raw_zip(tmp_path / "manifest-crc.zip", [RawMember(MANIFEST, body, crc=1)])
    assert refused(path) == "Checksum mismatch for manifest.json"
