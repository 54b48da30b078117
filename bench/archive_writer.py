"""Archive writer throughput (issue 13 figure: export >= 0.9x Python's ``zipfile`` with ``ZIP_STORED`` writing the
same files in the same run).

Writes the same model files (random bytes: nothing to gain from sparse reads) with ``zipfile`` (``ZIP_STORED``,
its ``ZipFile.write``) and with ``backups.archive.writer.ArchiveWriter`` (stored members with SHA-256 and CRC-32 on
the hashing thread), alternating, ``--rounds`` times; reports the best of each and their ratio, to a file on disk
and to ``/dev/null`` (the CPU cost alone). Both read from a warm page cache.

    .venv/bin/python bench/archive_writer.py [--gib 2] [--files 8] [--rounds 3] [--folder DIR]

On a machine whose cores are busy with other work the hashing thread has no core to run on and the ratio drops
(it measures contention then, not the writer); run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/: its queue.py would shadow the standard library's

from backups.archive.writer import ArchiveWriter, open_regular_file  # noqa: E402

MIB = 1024 * 1024


def make_files(folder: Path, total: int, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    block = os.urandom(8 * MIB)
    paths = []
    for index in range(count):
        path = folder / f"model_{index:02d}.safetensors"
        remaining = total // count
        with path.open("wb") as handle:
            while remaining > 0:
                handle.write(block[: min(len(block), remaining)])
                remaining -= len(block)
        paths.append(path)
    return paths


def with_zipfile(paths: list[Path], target: str) -> None:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in paths:
            archive.write(path, f"adapters/x/files/{path.name}")


def with_writer(paths: list[Path], target: str) -> None:
    with open(target, "wb") as sink:
        writer = ArchiveWriter(sink, compresslevel=6)
        for path in paths:
            opened = open_regular_file(path)
            assert opened is not None
            handle, status = opened
            with handle:
                for _nbytes in writer.write_file(f"adapters/x/files/{path.name}", handle, status.st_size):
                    pass
        writer.close({"members": [member.__dict__ for member in writer.members]})


def best_seconds(run: Callable[[list[Path], str], None], paths: list[Path], target: str) -> float:
    started = time.perf_counter()
    run(paths, target)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="loraforge-bench-archive-"))
    paths = make_files(folder / "loras", int(args.gib * 1024**3), args.files)
    total = sum(path.stat().st_size for path in paths)
    results: dict[str, dict[str, float]] = {}
    for target_name, target in (("disk", str(folder / "out.zip")), ("devnull", os.devnull)):
        times: dict[str, list[float]] = {"zipfile": [], "writer": []}
        for _round in range(args.rounds):
            times["zipfile"].append(best_seconds(with_zipfile, paths, target))
            times["writer"].append(best_seconds(with_writer, paths, target))
        best = {name: min(values) for name, values in times.items()}
        results[target_name] = {
            "zipfile_mb_s": round(total / best["zipfile"] / 1e6),
            "writer_mb_s": round(total / best["writer"] / 1e6),
            "ratio": round(best["zipfile"] / best["writer"], 3),
        }
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"bytes": total, "cpus": os.cpu_count(), "results": results, "peak_rss_mib": round(peak_mib)}))


if __name__ == "__main__":
    main()
