"""Reading a validated archive (SPEC 6.10): members by name, JSON and JSON Lines records. Only
``backups.archive.validate.archive_validate`` builds a ``ValidatedArchive``; nothing reads an archive that did not
pass validation."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from backups.archive.format import ArchiveError, MemberEntry

COPY_CHUNK = 1024 * 1024  # bytes per read when a member is copied out


# orjson reads an integer beyond 64 bits as a float where json keeps it exact: a run of 19 digits goes to json.
# Found by mapping every digit to "0" (bytes.translate, a sixth of the cost of a regular expression's search).
DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
LONG_NUMBER = b"0" * 19


def json_loads(data: bytes) -> Any:
    """``json.loads``, twice as fast on the records a restore reads by the million (orjson; a restore of a million
    jobs parses each record twice). What orjson refuses (``NaN``, lone surrogates: both accepted by ``json``) is
    parsed again by ``json``, and so is a record with a run of 19 digits or more (an integer orjson would round), so
    the outcome is always ``json``'s own."""
    if LONG_NUMBER in data.translate(DIGITS_AS_ZERO):
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


@dataclass
class ValidatedArchive:
    """An archive whose every member was checked against its manifest (names, sizes, checksums)."""

    path: Path
    manifest: dict[str, Any]
    members: dict[str, MemberEntry] = field(default_factory=dict)  # every listed member by path

    @property
    def kind(self) -> str:
        return str(self.manifest.get("kind") or "")

    def has(self, name: str) -> bool:
        return name in self.members

    def declared_count(self, key: str) -> int:
        """The manifest's ``counts[key]`` (0 when absent or not a count). Unchecked: for estimates only."""
        counts = self.manifest.get("counts")
        value = counts.get(key) if isinstance(counts, dict) else None
        return value if type(value) is int and value >= 0 else 0

    def names_under(self, prefix: str) -> list[str]:
        """Listed members whose path starts with ``prefix`` (in manifest order)."""
        return [name for name in self.members if name.startswith(prefix)]

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        with zipfile.ZipFile(self.path) as archive, archive.open(name) as stream:
            yield stream

    def read_bytes(self, name: str) -> bytes:
        with self.open(name) as stream:
            return stream.read()

    def json(self, name: str) -> Any:
        try:
            return json_loads(self.read_bytes(name))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ArchiveError(f"Invalid JSON in {name}") from exc

    def jsonl(self, name: str, *, opened: zipfile.ZipFile | None = None) -> Iterator[tuple[int, Any]]:
        """``(line number, record)`` of a JSON Lines member, streamed; blank lines skipped. ``opened``: this
        archive already open (opening it reads the whole central directory again: 100,000 entries and more)."""
        with self.open(name) if opened is None else opened.open(name) as stream:
            for number, line in enumerate(_lines(stream), start=1):
                if not line.strip():
                    continue
                try:
                    yield number, json_loads(line)
                except (UnicodeDecodeError, ValueError) as exc:
                    raise ArchiveError(f"Invalid JSON in {name} line {number}") from exc


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    """The lines of ``stream`` without their newline, read 1 MiB at a time (``readline`` on a ZIP member costs a
    Python call per line: a twentieth of a million-job restore)."""
    rest = b""
    while chunk := stream.read(COPY_CHUNK):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest
