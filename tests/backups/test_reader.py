"""Reading JSON Lines members: records and their line numbers across the reader's 1 MiB pieces, blank lines skipped,
the first invalid line named by its number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backups.archive.format import ArchiveError
from tests.backups.apply_archives import validated

MEMBER = "generations/jobs.jsonl"
LONG = "x" * 70_000  # 16 such records cross a 1 MiB piece


def lines_of(records: list[bytes]) -> bytes:
    return b"\n".join(records)


def test_records_and_line_numbers_across_pieces_blank_lines_skipped(tmp_path: Path):
    records = [json.dumps({"n": index, "text": LONG}).encode() for index in range(40)]
    body = lines_of([*records[:20], b"", b"   \r", *records[20:]]) + b"\r\n"  # a blank line, a CR-only line, CRLF end
    archive = validated(tmp_path / "a.zip", {MEMBER: body})
    read = list(archive.jsonl(MEMBER))
    assert [record["n"] for _number, record in read] == list(range(40))
    assert [number for number, _record in read] == [*range(1, 21), *range(23, 43)]
    assert len(body) > 2 * 1024 * 1024


@pytest.mark.parametrize("bad_line", [1, 17, 33, 40])
def test_the_first_invalid_line_is_named(tmp_path: Path, bad_line: int):
    records = [json.dumps({"n": index, "text": LONG}).encode() for index in range(40)]
    records[bad_line - 1] = records[bad_line - 1][:-5]  # cut short
    archive = validated(tmp_path / "a.zip", {MEMBER: lines_of(records)})  # no newline after the last line
    with pytest.raises(ArchiveError, match=f"^Invalid JSON in {MEMBER} line {bad_line}$"):
        list(archive.jsonl(MEMBER))


def test_last_line_without_newline_is_read(tmp_path: Path):
    archive = validated(tmp_path / "a.zip", {MEMBER: b'{"a": 1}\n{"a": 2}'})
    assert list(archive.jsonl(MEMBER)) == [(1, {"a": 1}), (2, {"a": 2})]
