"""Progress hooks, cancellation, workers and the cost of an unchanged rescan (SPEC 6.6.3, 6.6.8)."""

from __future__ import annotations

import json
import struct
import threading
from pathlib import Path

import pytest

from adapters.models import Adapter, ScannedFile
from adapters.scanner import engine
from adapters.scanner.engine import library_scan
from adapters.scanner.types import NullProgress, ScanCancelled, ScanOptions
from tests.adapters.scanner.test_engine import lora, scan

pytestmark = pytest.mark.django_db


class Recorder(NullProgress):
    def __init__(self, *, cancel_after: int | None = None) -> None:
        self.planned_calls: list[tuple[int, int]] = []
        self.bytes = 0
        self.done: list[tuple[str, int, int]] = []
        self.checks = 0
        self.cancel_after = cancel_after
        self.lock = threading.Lock()

    def planned(self, *, files: int, bytes_to_hash: int) -> None:
        self.planned_calls.append((files, bytes_to_hash))

    def bytes_read(self, count: int) -> None:
        with self.lock:
            self.bytes += count

    def file_done(self, *, path: Path, index: int, total: int) -> None:
        self.done.append((path.name, index, total))

    def cancelled(self) -> bool:
        self.checks += 1
        return self.cancel_after is not None and self.checks > self.cancel_after


def test_progress_hooks_are_called(lora_dir: Path):
    paths = [lora(lora_dir, f"f{index}.safetensors", seed=index) for index in range(3)]
    progress = Recorder()
    report = library_scan(options=ScanOptions(workers=2), progress=progress)
    total_bytes = sum(path.stat().st_size for path in paths)
    assert progress.planned_calls == [(3, total_bytes)]
    assert progress.bytes == total_bytes == report.bytes_hashed
    assert progress.done == [("f0.safetensors", 1, 3), ("f1.safetensors", 2, 3), ("f2.safetensors", 3, 3)]


def test_planned_counts_only_the_bytes_still_to_hash(lora_dir: Path):
    lora(lora_dir, "a.safetensors")
    scan()
    new = lora(lora_dir, "b.safetensors", seed=1)
    progress = Recorder()
    library_scan(options=ScanOptions(), progress=progress)
    assert progress.planned_calls == [(2, new.stat().st_size)]


def test_cancellation_stops_between_files_and_keeps_what_was_written(lora_dir: Path):
    for index in range(5):
        lora(lora_dir, f"f{index}.safetensors", seed=index)
    progress = Recorder(cancel_after=2)
    with pytest.raises(ScanCancelled) as cancelled:
        library_scan(options=ScanOptions(), progress=progress)
    report = cancelled.value.report
    assert [Path(item.path).name for item in report.items] == ["f0.safetensors", "f1.safetensors"]
    assert (report.created, report.files_seen) == (2, 5)
    assert report.duration_seconds > 0
    assert sorted(Path(path).name for path in Adapter.objects.values_list("file_path", flat=True)) == [
        "f0.safetensors",
        "f1.safetensors",
    ]
    assert ScannedFile.objects.count() == 2
    assert scan().created == 3  # the next scan carries on


def test_writes_are_committed_in_batches(lora_dir: Path, monkeypatch):
    monkeypatch.setattr(engine, "BATCH_SIZE", 2)
    for index in range(5):
        lora(lora_dir, f"f{index}.safetensors", seed=index)
    batches: list[int] = []
    real_flush = engine._Scan.flush

    def flush(self, buffer):
        if buffer:
            batches.append(len(buffer))
        return real_flush(self, buffer)

    monkeypatch.setattr(engine._Scan, "flush", flush)
    scan(workers=1)
    assert max(batches) <= 2
    assert sum(batches) == 5


def test_one_worker_gives_the_same_result(lora_dir: Path):
    for index in range(4):
        lora(lora_dir, f"f{index}.safetensors", seed=index)
    report = scan(workers=1)
    assert (report.created, report.hashed) == (4, 4)


def _tiny_safetensors(index: int) -> bytes:
    header = {
        "__metadata__": {"ss_output_name": f"bulk_{index}", "ss_network_dim": "8"},
        "w": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]},
    }
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + index.to_bytes(8, "little")


def test_unchanged_rescan_of_a_few_thousand_files_costs_a_fixed_number_of_queries(
    lora_dir: Path, monkeypatch, django_assert_max_num_queries
):
    """No per-file query and no hashing (the time budget itself is measured by bench/ingest.py, not here)."""
    for index in range(3000):
        folder = lora_dir / f"d{index // 300:02d}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{index:05d}.safetensors").write_bytes(_tiny_safetensors(index))
        if index % 10 == 0:
            (folder / f"f{index:05d}.civitai.info").write_text(json.dumps({"id": index + 1, "name": "v1"}))
    assert scan().created == 3000
    monkeypatch.setattr("adapters.scanner.hashing.sha256_file", lambda *a, **k: pytest.fail("hashed"))
    with django_assert_max_num_queries(10):
        report = scan()
    assert (report.unchanged, report.hashed, report.items) == (3000, 0, [])
