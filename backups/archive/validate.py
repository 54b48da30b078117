"""Import validation (SPEC 6.10.2 steps 2-8): everything about an archive is checked before anything is written.

The first failure raises ``ArchiveError`` with the SPEC's message. Nothing here trusts a size, a name or a count
that the archive declares: the central directory is counted before ``zipfile`` loads it, and every member is
read as a stream (1 MiB at a time) that stops as soon as it yields more than declared, so a zip bomb whose
headers lie costs a few MiB of memory and no disk.

Decisions the SPEC leaves open (documented in the tests too):
- Names are checked as stored (``ZipInfo.orig_filename``, which keeps a NUL that ``zipfile`` would cut), and also
  after NFC normalisation; two names equal after NFC are duplicates (they are one file on macOS and one name to
  a reader). An empty segment (``a//b``) escapes like ``.``; one trailing ``/`` (a directory entry) does not, but
  such an entry is never listed, so step 7 refuses it.
- A central directory larger than ``LORAFORGE_IMPORT_MAX_MEMBERS`` KiB is "too many members" (1 KiB per member
  is far above what a LoRAForge archive needs), so ``zipfile`` never loads a huge one into memory.
- Encrypted members → "Encrypted archives are not supported" (SPEC 5.9); compression methods LoRAForge never
  writes (anything but stored and deflated: bzip2/LZMA decompress without an output bound) → "Not a LoRAForge
  archive". Both are checked after step 4, before sizes.
- A ``members`` entry that is not ``{"path": str, "size": int >= 0, "sha256": 64 hex}`` (or repeats a path, or
  lists ``manifest.json``) makes the manifest "manifest.json is not valid JSON": the SPEC already uses that
  message for JSON of the wrong shape ("not an object").
- ``format_version`` other than the integer 1 (``true`` and ``"1"`` included) → "Unsupported archive format version
  <n>", the value as JSON (``null`` when missing).
- A member that cannot be decompressed, whose CRC-32 or size differs from its declarations, or whose local header
  does not match the central directory → "Checksum mismatch for <name>" (its bytes are not the declared ones).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import stat
import struct
import unicodedata
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

from django.conf import settings

from backups.archive.format import (
    CHECKSUM_MISMATCH,
    DUPLICATE_MEMBER,
    FORMAT,
    FORMAT_VERSION,
    LARGER_THAN_DECLARED,
    MANIFEST,
    MANIFEST_INVALID,
    MANIFEST_MAX_BYTES,
    MANIFEST_MISSING,
    MISSING_MEMBER,
    NO_DISK_SPACE,
    NO_ENCRYPTION,
    NOT_A_ZIP,
    NOT_LORAFORGE,
    PATH_ESCAPES,
    SUSPICIOUS_RATIO,
    SYMLINK_MEMBER,
    TOO_LARGE,
    TOO_MANY_MEMBERS,
    UNLISTED_MEMBER,
    UNSUPPORTED_VERSION,
    ArchiveError,
    MemberEntry,
)
from backups.archive.progress import ArchiveCancelled, ArchiveProgress, NoProgress
from backups.archive.reader import ValidatedArchive

MiB = 1024 * 1024
READ_CHUNK = MiB
RATIO_MIN_SIZE = MiB  # the ratio limit applies to members larger than this
DISK_MARGIN = 1024 * MiB  # free space required beyond the archive's extracted size
CD_BYTES_PER_MEMBER = 1024
READABLE_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
ENCRYPTED_FLAG = 0x1
SHOWN_NAME_MAX = 300

_CD_HEADER = struct.Struct("<4s4B4HL2L5H2L")  # a central directory entry's fixed part (46 bytes)
_CD_SIGNATURE = b"PK\x01\x02"
_DRIVE = re.compile(r"^[A-Za-z]:")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError, OSError)


def archive_validate(
    path: Path, *, progress: ArchiveProgress | None = None, max_members: int | None = None
) -> ValidatedArchive:
    """Check ``path`` per SPEC 6.10.2 steps 2-8; the validated archive, or ``ArchiveError`` at the first failure.
    ``max_members`` replaces ``LORAFORGE_IMPORT_MAX_MEMBERS`` for an archive whose size LoRAForge knows already (a
    stored backup whose SHA-256 matched its row: one library of 100,000 adapters holds more members than that)."""
    progress = progress or NoProgress()
    limit = settings.LORAFORGE_IMPORT_MAX_MEMBERS if max_members is None else max_members
    with _open_zip(path, limit) as archive:
        infos = archive.infolist()
        _check_names(infos)
        _check_kinds(infos)
        _check_readable(infos)
        _check_sizes(infos)
        by_name = {info.orig_filename: info for info in infos}
        manifest = _read_manifest(archive, by_name)
        members = _manifest_members(manifest)
        _check_listing(by_name, members)
        _check_contents(archive, by_name, members, progress)
    return ValidatedArchive(path=path, manifest=manifest, members=members)


def shown(name: str) -> str:
    """A member name as a message shows it: control characters escaped (a NUL cannot be stored in PostgreSQL's
    JSON), very long names shortened."""
    text = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", name)
    return text if len(text) <= SHOWN_NAME_MAX else text[:SHOWN_NAME_MAX] + "…"


# --- step 2: a ZIP, with a bounded number of members ------------------------------------------------


def _open_zip(path: Path, limit: int) -> zipfile.ZipFile:
    try:
        with path.open("rb") as stream:
            _count_members(stream, limit)
        return zipfile.ZipFile(path)
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, struct.error, UnicodeDecodeError, NotImplementedError):
        raise ArchiveError(NOT_A_ZIP) from None


def _count_members(stream: IO[bytes], limit: int) -> int:
    """Walk the central directory entry by entry (never loading it whole) and stop past ``limit`` members."""
    end = zipfile._EndRecData(stream)  # type: ignore[attr-defined]
    if not end:
        raise ArchiveError(NOT_A_ZIP)
    size = end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
    start = end[zipfile._ECD_LOCATION] - size  # type: ignore[attr-defined]
    if end[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:  # type: ignore[attr-defined]
        start -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator  # type: ignore[attr-defined]
    if start < 0:
        raise ArchiveError(NOT_A_ZIP)
    if end[zipfile._ECD_ENTRIES_TOTAL] > limit or size > limit * CD_BYTES_PER_MEMBER:  # type: ignore[attr-defined]
        raise ArchiveError(TOO_MANY_MEMBERS)
    stream.seek(start)
    count = position = 0
    while position < size:
        header = stream.read(_CD_HEADER.size)
        if len(header) < _CD_HEADER.size or header[:4] != _CD_SIGNATURE:
            raise ArchiveError(NOT_A_ZIP)
        name_length, extra_length, comment_length = struct.unpack_from("<3H", header, 28)
        stream.seek(name_length + extra_length + comment_length, 1)
        position += _CD_HEADER.size + name_length + extra_length + comment_length
        count += 1
        if count > limit:
            raise ArchiveError(TOO_MANY_MEMBERS)
    return count


# --- steps 3 and 4: names, kinds ----------------------------------------------------------------------


def _escapes(name: str) -> bool:
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or _DRIVE.match(name):
        return True
    for form in {name, unicodedata.normalize("NFC", name)}:
        segments = form.split("/")
        if segments[-1] == "":
            segments.pop()  # a directory entry's trailing slash
        if any(segment in ("", ".", "..") for segment in segments):
            return True
    return False


def _check_names(infos: list[zipfile.ZipInfo]) -> None:
    for info in infos:
        if _escapes(info.orig_filename):
            raise ArchiveError(PATH_ESCAPES.format(name=shown(info.orig_filename)))
    seen: set[str] = set()
    for info in infos:
        key = unicodedata.normalize("NFC", info.orig_filename)
        if key in seen:
            raise ArchiveError(DUPLICATE_MEMBER.format(name=shown(info.orig_filename)))
        seen.add(key)


def _check_kinds(infos: list[zipfile.ZipInfo]) -> None:
    """Symbolic links and special files, from the Unix mode in the high 16 bits of the external attributes."""
    for info in infos:
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise ArchiveError(SYMLINK_MEMBER.format(name=shown(info.orig_filename)))


def _check_readable(infos: list[zipfile.ZipInfo]) -> None:
    for info in infos:
        if info.flag_bits & ENCRYPTED_FLAG:
            raise ArchiveError(NO_ENCRYPTION)
        if info.compress_type not in READABLE_METHODS:
            raise ArchiveError(NOT_LORAFORGE)


# --- step 5: declared sizes ------------------------------------------------------------------------


def _check_sizes(infos: list[zipfile.ZipInfo]) -> None:
    total = sum(info.file_size for info in infos)
    largest = max((info.file_size for info in infos), default=0)
    if largest > settings.LORAFORGE_IMPORT_MAX_MEMBER_MB * MiB or total > settings.LORAFORGE_IMPORT_MAX_TOTAL_MB * MiB:
        raise ArchiveError(TOO_LARGE)
    ratio = settings.LORAFORGE_IMPORT_MAX_RATIO
    for info in infos:
        if info.file_size > RATIO_MIN_SIZE and info.file_size > ratio * max(info.compress_size, 1):
            raise ArchiveError(SUSPICIOUS_RATIO.format(name=shown(info.orig_filename)))
    data_dir = Path(settings.DATA_DIR)
    data_dir.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(data_dir).free < total + DISK_MARGIN:
        raise ArchiveError(NO_DISK_SPACE)


# --- step 6: the manifest ---------------------------------------------------------------------------


def _reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not valid JSON")


def _read_manifest(archive: zipfile.ZipFile, by_name: dict[str, zipfile.ZipInfo]) -> dict[str, Any]:
    info = by_name.get(MANIFEST)
    if info is None:
        raise ArchiveError(MANIFEST_MISSING)
    if info.file_size > MANIFEST_MAX_BYTES:
        raise ArchiveError(MANIFEST_INVALID)
    chunks: list[bytes] = []
    _stream_member(archive, info, info.file_size, chunks.append)
    try:
        manifest = json.loads(b"".join(chunks).decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ArchiveError(MANIFEST_INVALID) from None
    if not isinstance(manifest, dict):
        raise ArchiveError(MANIFEST_INVALID)
    if manifest.get("format") != FORMAT:
        raise ArchiveError(NOT_LORAFORGE)
    version = manifest.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        shown_version = str(version) if type(version) is int else json.dumps(version)[:50]
        raise ArchiveError(UNSUPPORTED_VERSION.format(version=shown_version))
    return manifest


def _member_entry(entry: Any) -> MemberEntry:
    if not isinstance(entry, dict):
        raise ArchiveError(MANIFEST_INVALID)
    path, size, digest = entry.get("path"), entry.get("size"), entry.get("sha256")
    if not isinstance(path, str) or path == MANIFEST or type(size) is not int or size < 0:
        raise ArchiveError(MANIFEST_INVALID)
    if not isinstance(digest, str) or _SHA256.match(digest) is None:
        raise ArchiveError(MANIFEST_INVALID)
    return MemberEntry(path=path, size=size, sha256=digest.lower())


def _manifest_members(manifest: dict[str, Any]) -> dict[str, MemberEntry]:
    listed = manifest.get("members")
    if not isinstance(listed, list):
        raise ArchiveError(MANIFEST_INVALID)
    members: dict[str, MemberEntry] = {}
    for raw in listed:
        entry = _member_entry(raw)
        if entry.path in members:
            raise ArchiveError(MANIFEST_INVALID)
        members[entry.path] = entry
    return members


# --- step 7: listing ----------------------------------------------------------------------------------


def _check_listing(by_name: dict[str, zipfile.ZipInfo], members: dict[str, MemberEntry]) -> None:
    for name in by_name:
        if name != MANIFEST and name not in members:
            raise ArchiveError(UNLISTED_MEMBER.format(name=shown(name)))
    for name in members:
        if name not in by_name:
            raise ArchiveError(MISSING_MEMBER.format(name=shown(name)))


# --- step 8: every member read, counted and hashed ----------------------------------------------------


def _check_contents(
    archive: zipfile.ZipFile,
    by_name: dict[str, zipfile.ZipInfo],
    members: dict[str, MemberEntry],
    progress: ArchiveProgress,
) -> None:
    progress.planned(sum(entry.size for entry in members.values()))
    for name, entry in members.items():
        info = by_name[name]
        digest = hashlib.sha256()

        def consume(chunk: bytes, name: str = name, digest: Any = digest) -> None:
            digest.update(chunk)
            progress.advance(len(chunk), name)
            if progress.cancelled():
                raise ArchiveCancelled(name)

        size = _stream_member(archive, info, min(info.file_size, entry.size), consume)
        if size != entry.size or digest.hexdigest() != entry.sha256:
            raise ArchiveError(CHECKSUM_MISMATCH.format(name=shown(name)))


def _stream_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, declared: int, consume: Any) -> int:
    """Decompress ``info`` chunk by chunk into ``consume``; ``LARGER_THAN_DECLARED`` as soon as it yields more than
    ``declared`` bytes, ``CHECKSUM_MISMATCH`` when its CRC-32 or its stored size differs or it cannot be read.

    ``zipfile`` itself stops at the central directory's size (and then fails on the CRC), so it is opened with a
    copy of the entry that allows one byte more and checks no CRC: the CRC is checked here."""
    name = shown(info.orig_filename)
    clone = copy.copy(info)
    clone.file_size = declared + 1
    del clone.CRC  # zipfile skips its own check without one
    size = crc = 0
    try:
        with archive.open(clone) as stream:
            while chunk := stream.read(READ_CHUNK):
                size += len(chunk)
                if size > declared:
                    raise ArchiveError(LARGER_THAN_DECLARED.format(name=name))
                crc = zlib.crc32(chunk, crc)
                consume(chunk)
    except (ArchiveError, ArchiveCancelled):
        raise
    except _READ_ERRORS:
        raise ArchiveError(CHECKSUM_MISMATCH.format(name=name)) from None
    if size != info.file_size or crc != info.CRC:
        raise ArchiveError(CHECKSUM_MISMATCH.format(name=name))
    return size
