"""ZIP files written byte by byte, for archives ``zipfile`` will not write: NUL in names, headers that lie about
sizes, a zip bomb of many GiB of zeros built in milliseconds."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backups.archive.format import MANIFEST
from tests.backups.archives import manifest_for

STORED, DEFLATED = 0, 8
UTF8_FLAG = 0x800
MiB = 1024 * 1024


@dataclass
class RawMember:
    name: str
    data: bytes  # as stored in the archive (already deflated when method is DEFLATED)
    method: int = STORED
    file_size: int | None = None  # the declared uncompressed size (default: len(data))
    crc: int | None = None  # default: the CRC of ``data`` (right for stored members only)
    external_attr: int = 0
    flags: int = UTF8_FLAG


def raw_deflate(data: bytes, level: int = 6) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def zeros_bomb(mib: int) -> bytes:
    """A raw deflate stream that inflates to ``mib`` MiB of zeros: one full-flushed block (independent of what came
    before it) repeated, then the final block. 1 GiB costs about 1 MiB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(b"\0" * MiB) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * mib + compressor.flush()


def raw_zip(path: Path, members: Sequence[RawMember]) -> Path:
    """Local headers and data, the central directory, the end record: exactly what ``members`` say."""
    body = bytearray()
    central = bytearray()
    for member in members:
        name = member.name.encode("utf-8")
        size = len(member.data) if member.file_size is None else member.file_size
        crc = zlib.crc32(member.data) if member.crc is None else member.crc
        offset = len(body)
        fixed = (20, member.flags, member.method, 0, 0x21, crc, len(member.data), size, len(name))
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", *fixed, 0) + name + member.data
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", (3 << 8) | 20, *fixed, 0, 0, 0, 0, member.external_attr, offset
        )
        central += name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(body), 0)
    path.write_bytes(bytes(body + central + end))
    return path


def manifest_member(contents: dict[str, bytes], **overrides: Any) -> RawMember:
    """``manifest.json`` listing ``contents`` (the members' real uncompressed bytes)."""
    return RawMember(MANIFEST, json.dumps({**manifest_for(contents), **overrides}).encode())


def listed(name: str, size: int, data_for_sha: bytes = b"") -> dict[str, Any]:
    return {"path": name, "size": size, "sha256": hashlib.sha256(data_for_sha).hexdigest()}
