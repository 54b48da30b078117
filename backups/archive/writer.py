"""Writing a ``loraforge-archive`` ZIP (SPEC 6.10.1) into any binary sink: a file, or a chunk sink that an HTTP
response drains as the archive grows.

Every member's SHA-256 and size are computed while it is written. JSON members are deflated at the archive's level
(0 = stored); model and image files are always stored and copied in 1 MiB chunks. A file's ZIP entry carries its
size from ``stat`` before it is opened, so ``zipfile`` picks ZIP64 for files over about 2 GiB; JSON Lines members,
whose size is unknown in advance, are always ZIP64. On a sink without ``seek`` (a ``ChunkSink``) ``zipfile`` writes
data descriptors after each member instead of seeking back to patch its local header.

Speed: ``zipfile`` computes a CRC-32 of every chunk and writes it; this writer adds a SHA-256 of the same chunk.
Both ``zlib.crc32`` and ``hashlib`` release the GIL on large buffers, so the digest of a chunk runs on a second
thread while the main thread writes it (at most ``HASH_AHEAD`` chunks in flight, so memory stays bounded). A file
whose SHA-256 the caller already knows (``write_file(..., sha256=...)``: the catalogue's hash of an unchanged LoRA
file) gets only its CRC-32 computed: SHA-256 is the most expensive thing the writer does (about 1.7 GiB/s against
3.5 for CRC-32 on this project's machines).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import struct
import zipfile
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

from backups.archive.format import MANIFEST, MemberEntry

CHUNK = 1024 * 1024
DATA_DESCRIPTOR = 0x08  # general purpose flag: CRC and sizes follow the data
DESCRIPTOR_SIGNATURE = 0x08074B50
HASH_AHEAD = 4  # chunks whose digest may still be running while the next ones are read and written
THREADED_HASH_MIN = 64 * 1024  # smaller buffers are hashed inline (a thread hop costs more than the digest)


class ChunkSink:
    """A write-only binary sink that keeps what was written until ``drain()``: ``tell()`` counts every byte, and
    it has no ``seek``, so ``zipfile`` streams (data descriptors, no patched headers)."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._written = 0

    def write(self, data: Any) -> int:
        piece = bytes(data)
        if piece:
            self._pieces.append(piece)
            self._written += len(piece)
        return len(piece)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        pieces, self._pieces = self._pieces, []
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class _Digest:
    """The SHA-256 (and, for a stored file, the CRC-32) of a member, fed in order; large chunks are digested on
    the writer's hashing thread while the caller writes them."""

    def __init__(self, executor: ThreadPoolExecutor, *, crc: bool = False, sha256: str | None = None) -> None:
        self._hash = hashlib.sha256()
        self._known = sha256  # the digest, when the caller knows it: not recomputed
        self._executor = executor
        self._pending: deque[Future[None]] = deque()
        self._with_crc = crc
        self.crc = 0
        self.size = 0

    def _digest(self, data: bytes | memoryview) -> None:
        if self._known is None:
            self._hash.update(data)
        if self._with_crc:
            self.crc = zlib.crc32(data, self.crc)

    def update(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        if len(data) < THREADED_HASH_MIN and not self._pending:
            self._digest(data)
            return
        self._pending.append(self._executor.submit(self._digest, data))
        while len(self._pending) > HASH_AHEAD:
            self._pending.popleft().result()

    def finish(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def hexdigest(self) -> str:
        self.finish()
        return self._known or self._hash.hexdigest()


class MemberStream:
    """One member open for writing: ``write`` hashes and stores (or deflates) a piece of it."""

    def __init__(self, handle: IO[bytes], digest: _Digest) -> None:
        self._handle = handle
        self._digest = digest

    def write(self, data: bytes | memoryview) -> None:
        if data:
            self._digest.update(data)
            self._handle.write(data)

    @property
    def size(self) -> int:
        return self._digest.size


class ArchiveWriter:
    """A ZIP being written member by member; ``members`` lists each finished one with its size and SHA-256.

    ``close(manifest)`` writes ``manifest.json`` last and the central directory; ``abort()`` stops without them
    (the caller removes what was written)."""

    def __init__(self, sink: BinaryIO | ChunkSink, *, compresslevel: int) -> None:
        self._zip = zipfile.ZipFile(sink, "w", allowZip64=True)  # type: ignore[call-overload]
        self._compresslevel = compresslevel
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-hash")
        self._open: IO[bytes] | None = None
        self._names: set[str] = set()
        self._buffers = [bytearray(CHUNK) for _ in range(HASH_AHEAD + 2)]
        self._next_buffer = 0
        self.members: list[MemberEntry] = []

    def has(self, name: str) -> bool:
        return name in self._names

    def _info(self, name: str, *, compressed: bool, size: int | None) -> zipfile.ZipInfo:
        if name in self._names:
            raise ValueError(f"Duplicate archive member: {name}")
        info = zipfile.ZipInfo(name, date_time=_now_zip())
        info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
        if compressed and self._compresslevel > 0:
            info.compress_type = zipfile.ZIP_DEFLATED
            info._compresslevel = self._compresslevel  # type: ignore[attr-defined]
        else:
            info.compress_type = zipfile.ZIP_STORED
        if size is not None:
            info.file_size = size  # zipfile decides ZIP64 from it (size * 1.05 > 2 GiB - 1)
        return info

    @contextlib.contextmanager
    def member(self, name: str, *, compressed: bool, size: int | None = None) -> Iterator[MemberStream]:
        """A member written in pieces. Without ``size`` it is ZIP64 (its size is not known in advance)."""
        if name == MANIFEST:
            raise ValueError(f"{MANIFEST} is written by close()")
        info = self._info(name, compressed=compressed, size=size)
        digest = _Digest(self._executor)
        handle = self._zip.open(info, "w", force_zip64=size is None)
        self._open = handle
        stream = MemberStream(handle, digest)
        yield stream
        handle.close()
        self._open = None
        self._names.add(name)
        self.members.append(MemberEntry(path=name, size=digest.size, sha256=digest.hexdigest()))

    def write_bytes(self, name: str, data: bytes, *, compressed: bool = True) -> MemberEntry:
        with self.member(name, compressed=compressed, size=len(data)) as stream:
            stream.write(data)
        return self.members[-1]

    def write_file(self, name: str, source: BinaryIO, size: int, *, sha256: str | None = None) -> Iterator[int]:
        """Copy an open file into a stored member in ``CHUNK``-sized pieces, yielding each piece's length (the
        caller reports progress and may stop between pieces). ``size`` comes from ``fstat`` and decides ZIP64.
        ``sha256``: the file's digest when the caller knows it (then only the CRC-32 is computed); the caller
        answers for it matching the bytes copied.

        ``zipfile`` would compute the CRC-32 of each piece on this thread before writing it; here the hashing
        thread computes it with the SHA-256, so this thread only reads and writes (profiled: with the CRC on this
        thread the copy ran at 0.6-0.85 of ``zipfile``'s speed, without it at par). The member is written as
        ``zipfile`` writes one to a sink without ``seek``: local header, data, data descriptor; ``zipfile`` then
        lists it in the central directory like its own members."""
        info = self._info(name, compressed=False, size=size)
        zip64 = size * 1.05 > zipfile.ZIP64_LIMIT  # zipfile's own rule (sizes may grow while copying)
        info.flag_bits |= DATA_DESCRIPTOR
        archive = self._zip
        archive._writecheck(info)
        archive._didModify = True
        sink = archive.fp
        assert sink is not None
        info.header_offset = sink.tell()
        sink.write(info.FileHeader(zip64))
        archive._writing = True
        digest = _Digest(self._executor, crc=True, sha256=sha256)
        for chunk in self._chunks(source):
            digest.update(chunk)
            sink.write(chunk)
            yield len(chunk)
        digest.finish()
        if not zip64 and digest.size > zipfile.ZIP64_LIMIT:
            raise RuntimeError(f"{name} grew past 2 GiB while it was copied")
        info.CRC, info.compress_size, info.file_size = digest.crc, digest.size, digest.size
        sink.write(
            struct.pack("<LLQQ" if zip64 else "<LLLL", DESCRIPTOR_SIGNATURE, digest.crc, digest.size, digest.size)
        )
        archive.start_dir = sink.tell()
        archive._writing = False
        archive.filelist.append(info)
        archive.NameToInfo[info.filename] = info
        self._names.add(name)
        self.members.append(MemberEntry(path=name, size=digest.size, sha256=digest.hexdigest()))

    def _chunks(self, source: BinaryIO) -> Iterator[memoryview]:
        """``source`` read into a ring of reused buffers (a fresh 1 MiB object per chunk costs page faults that
        showed up as a fifth of the copy time). A buffer comes round again only after ``HASH_AHEAD`` + 1 later
        chunks were handed on, by which time its digest has finished (``_Digest`` keeps at most ``HASH_AHEAD``
        pending) and ``zipfile`` has written it."""
        while True:
            buffer = self._buffers[self._next_buffer]
            self._next_buffer = (self._next_buffer + 1) % len(self._buffers)
            count = source.readinto(buffer)  # type: ignore[attr-defined]
            if not count:
                return
            yield memoryview(buffer)[:count]

    def close(self, manifest: dict[str, Any]) -> None:
        body = json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8")
        info = self._info(MANIFEST, compressed=True, size=len(body))
        self._zip.writestr(info, body)
        self._zip.close()
        self._executor.shutdown(wait=True)

    def abort(self) -> None:
        """Leave the archive unfinished: no manifest, no central directory; the sink is left to the caller."""
        if self._open is not None:
            with contextlib.suppress(Exception):
                self._open.close()
            self._open = None
        self._zip._writing = False
        self._zip.fp = None  # ZipFile.close() (and its __del__) then writes nothing more
        self._executor.shutdown(wait=True, cancel_futures=True)


def open_regular_file(path: Path) -> tuple[BinaryIO, os.stat_result] | None:
    """``(open file, its fstat)`` for a regular file (symlinks followed), or None when it is missing or
    unreadable."""
    try:
        handle = path.open("rb", buffering=0)
    except OSError:
        return None
    try:
        status = os.fstat(handle.fileno())
    except OSError:
        handle.close()
        return None
    if not stat.S_ISREG(status.st_mode):
        handle.close()
        return None
    return handle, status


def _now_zip() -> tuple[int, int, int, int, int, int]:
    now = datetime.now(UTC)
    return (max(now.year, 1980), now.month, now.day, now.hour, now.minute, now.second)
