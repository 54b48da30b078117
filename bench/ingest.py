"""Library ingest benchmark (issue: library ingest figures).

Measures, each against a baseline taken in the same run:
1. initial hashing throughput over >= 2 GiB of real files: `import_loras` on an empty database with 1 and 2
   workers vs. one `sha256sum` over the same files (warm page cache, and cold-ish after dropping caches when
   the kernel lets us);
2. an unchanged rescan of 30,000 small files, end to end through the command (and that it hashed nothing);
3. a first scan of 2,000 files with sidecars (files/s, everything hashed);
4. peak memory (max RSS) of the command scanning 30,000 files.

    .venv/bin/python bench/ingest.py [--big-gib 2] [--small 30000] [--sidecars 2000] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 8 * 1024 * 1024


def safetensors_bytes(index: int, payload: int) -> tuple[bytes, int]:
    """A valid safetensors header for one uint8 tensor of ``payload`` bytes."""
    header = {
        "__metadata__": {
            "ss_output_name": f"bench_{index}",
            "ss_network_dim": "16",
            "ss_base_model_version": "sdxl_base_v1-0",
        },
        "w": {"dtype": "U8", "shape": [payload], "data_offsets": [0, payload]},
    }
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw, payload


def write_big_files(folder: Path, total_bytes: int, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    block = os.urandom(CHUNK)
    for index in range(count):
        head, payload = safetensors_bytes(index, total_bytes // count)
        path = folder / f"big_{index:02d}.safetensors"
        with path.open("wb") as handle:
            handle.write(head)
            written = 0
            while written < payload:
                piece = block[: min(CHUNK, payload - written)]
                handle.write(piece)
                written += len(piece)
                block = block[1:] + block[:1] if index % 2 else block  # vary content between files
            handle.write(index.to_bytes(8, "little"))  # every file distinct
        paths.append(path)
    return paths


def write_small_files(folder: Path, count: int, *, sidecars: bool = False) -> None:
    for index in range(count):
        sub = folder / f"set_{index // 500:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        head, payload = safetensors_bytes(index, 256)
        path = sub / f"lora_{index:05d}.safetensors"
        path.write_bytes(head + index.to_bytes(8, "little") * (payload // 8))
        if sidecars:
            (sub / f"lora_{index:05d}.json").write_text(
                json.dumps(
                    {"description": f"bench lora {index}", "activation text": f"style {index}", "preferred weight": 0.8}
                )
            )
            (sub / f"lora_{index:05d}.civitai.info").write_text(
                json.dumps(
                    {
                        "id": index,
                        "modelId": 10_000 + index,
                        "name": "v1",
                        "baseModel": "SDXL 1.0",
                        "trainedWords": [f"word{index}"],
                        "model": {"name": f"Bench {index}", "tags": ["bench"]},
                        "files": [{"name": path.name, "sizeKB": 1, "hashes": {}}],
                    }
                )
            )


def drop_caches() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - started, result


def fresh_env(data_dir: Path, lora_dir: Path) -> dict[str, str]:
    env = {**os.environ, "LORAFORGE_DATA_DIR": str(data_dir), "LORAFORGE_LORA_DIRS": str(lora_dir)}
    env.update({"LORAFORGE_LOG_LEVEL": "warning", "DJANGO_SETTINGS_MODULE": "loraforge.settings"})
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    return env


def import_loras(env: dict[str, str], *extra: str) -> tuple[float, dict, int]:
    """Run the command; returns wall seconds, its JSON report and the child's max RSS (KiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    seconds, result = timed([sys.executable, "manage.py", "import_loras", "--json", "--no-progress", *extra], env)
    if result.returncode not in (0, 2):
        raise RuntimeError(result.stderr)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, json.loads(result.stdout), max(rss, before)


def _hash_run(label: str, work: Path, lora_dir: Path, files: list[str], cache: str) -> tuple[float, int]:
    """Seconds, and the command's max RSS in KiB (0 for sha256sum)."""
    if label == "sha256sum":
        return timed(["sha256sum", *files])[0], 0
    workers = label.rsplit(" ", 1)[-1]
    env = fresh_env(work / f"db-{cache}-{workers}", lora_dir)
    if cache == "cold":
        drop_caches()
    seconds, report, rss = import_loras(env, "--workers", workers)
    assert report["hashed"] == len(files), report
    return seconds, rss


def bench_hashing(work: Path, gib: float) -> dict:
    lora_dir = work / "big"
    paths = write_big_files(lora_dir, int(gib * 1024**3), 16)
    total = sum(path.stat().st_size for path in paths)
    files = [str(path) for path in paths]
    results: dict = {"bytes": total}
    labels = ("sha256sum", "import_loras --workers 1", "import_loras --workers 2")
    for cache in ("warm", "cold"):
        if cache == "cold" and not drop_caches():
            results["cold"] = "unavailable (cannot drop the page cache here)"
            break
        results[cache] = {}
        for label in labels:
            if cache == "warm":
                subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True)  # into the page cache
            else:
                drop_caches()
            seconds, rss = _hash_run(label, work, lora_dir, files, cache)
            row = {"seconds": round(seconds, 3), "MiB_per_s": round(total / seconds / 2**20, 1)}
            results[cache][label] = {**row, "peak_rss_MiB": round(rss / 1024, 1)} if rss else row
    return results


def bench_small(work: Path, count: int) -> dict:
    lora_dir = work / "small"
    started = time.perf_counter()
    write_small_files(lora_dir, count)
    written = time.perf_counter() - started
    env = fresh_env(work / "db-small", lora_dir)
    first, _report, rss_first = import_loras(env)
    again, report, rss_again = import_loras(env)
    listing, _ = timed(["find", str(lora_dir), "-name", "*.safetensors", "-newer", "/"])  # baseline: a walk with stat
    return {
        "files": count,
        "write_seconds": round(written, 1),
        "first_scan_seconds": round(first, 2),
        "first_scan_files_per_s": round(count / first, 1),
        "unchanged_rescan_seconds": round(again, 2),
        "unchanged_rescan_hashed": report["hashed"],
        "unchanged_rescan_bytes_hashed": report["bytes_hashed"],
        "find_walk_seconds": round(listing, 2),
        "peak_rss_MiB": round(max(rss_first, rss_again) / 1024, 1),
    }


def bench_sidecars(work: Path, count: int) -> dict:
    lora_dir = work / "sidecars"
    write_small_files(lora_dir, count, sidecars=True)
    env = fresh_env(work / "db-sidecars", lora_dir)
    seconds, report, _ = import_loras(env)
    return {
        "files": count,
        "seconds": round(seconds, 2),
        "files_per_s": round(count / seconds, 1),
        "created": report["created"],
        "hashed": report["hashed"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big-gib", type=float, default=2.0)
    parser.add_argument("--small", type=int, default=30_000)
    parser.add_argument("--sidecars", type=int, default=2_000)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--only", choices=["hashing", "small", "sidecars"], default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="loraforge-ingest-"))
    results = {}
    try:
        if args.only in (None, "sidecars"):
            results["sidecars"] = bench_sidecars(work, args.sidecars)
            print(json.dumps({"sidecars": results["sidecars"]}), flush=True)
        if args.only in (None, "small"):
            results["small"] = bench_small(work, args.small)
            print(json.dumps({"small": results["small"]}), flush=True)
        if args.only in (None, "hashing"):
            results["hashing"] = bench_hashing(work, args.big_gib)
            print(json.dumps({"hashing": results["hashing"]}), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
