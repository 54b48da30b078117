"""Archive benchmark (issue 13): export, import, backup and restore.

``files``: a library of LoRA files (``--gib``, default 2 GiB in 16 files, imported and hashed first). The
baseline is Python's ``zipfile`` writing the same files with ``ZIP_STORED`` into one file, timed in the same run.
Then, through the real server (uvicorn, SQLite, embedded worker off), ``POST /export`` of half the library and of
all of it (records, sidecars and the LoRA files), streamed by one client into a file, and ``POST /import`` of the
full archive into a second, empty installation. Reported: seconds, MiB/s, the ratio to the baseline, and the web
process's peak RSS sampled every 20 ms during each request (flat as the archive grows = the same peak for half and
for all).

``metadata``: ``--adapters`` adapters (100,000) and ``--jobs`` generation jobs (1,000,000; 2-4 adapter links each)
seeded in bulk (the analytics triggers dropped during the load, rollups rebuilt after), then
``manage.py backup --type metadata_only``, ``manage.py restore_backup --mode merge`` into the same database (every
row present: all skipped) and into an empty database (every row inserted), each timed with its peak RSS.

    .venv/bin/python -m bench.archives files --gib 2
    .venv/bin/python -m bench.archives metadata --db sqlite
    .venv/bin/python -m bench.archives metadata --db postgres
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.adapters_api import free_port, start_server  # noqa: E402
from bench.ingest import write_big_files  # noqa: E402

MIB = 1024 * 1024
CHUNK = MIB
PG_BASE = "postgres://postgres@127.0.0.1:5432/"


# --- measuring ---------------------------------------------------------------------------------------------------


class PeakRss:
    """Samples a process's RSS every ``interval`` seconds while in the block; ``peak_mib`` is the highest seen."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.peak_kib = max(self.peak_kib, int(line.split()[1]))
        except OSError:
            pass

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> PeakRss:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def peak_mib(self) -> float:
        return round(self.peak_kib / 1024, 1)


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Run a command; wall seconds, its peak RSS (MiB) and the finished process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with PeakRss(process.pid, interval=0.05) as rss:
        stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    if process.returncode not in (0, 2):
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}: {stderr[-2000:]}")
    return seconds, rss.peak_mib, result


def manage(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


def base_env(data_dir: Path, lora_dir: Path, database_url: str | None = None) -> dict[str, str]:
    env = {**os.environ, "LORAFORGE_DATA_DIR": str(data_dir), "LORAFORGE_LORA_DIRS": str(lora_dir)}
    env.update({"LORAFORGE_LOG_LEVEL": "warning", "DJANGO_SETTINGS_MODULE": "loraforge.settings"})
    env.update({"LORAFORGE_EMBEDDED_WORKER": "off", "LORAFORGE_SCAN_ON_STARTUP": "false"})
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    if database_url:
        env["DATABASE_URL"] = database_url
    lora_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    return env


def fresh_pg(name: str) -> str:
    import psycopg

    with psycopg.connect(PG_BASE + "postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return PG_BASE + name


def api_key(env: dict[str, str]) -> str:
    result = subprocess.run(
        manage("create_api_key", "--name", f"bench-{uuid.uuid4().hex[:6]}"),
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


# --- files: export and import over HTTP ------------------------------------------------------------------------


def baseline_zip(files: list[Path], target: Path) -> float:
    """Python's zipfile, ZIP_STORED, the same files into one archive file: seconds."""
    started = time.perf_counter()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for path in files:
            archive.write(path, arcname=f"files/{path.name}")
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def export_to_file(port: int, key: str, body: dict[str, Any], target: Path) -> tuple[float, int, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    conn.request("POST", "/api/v1/export", body=json.dumps(body), headers={"X-API-Key": key,
                 "Content-Type": "application/json"})  # fmt: skip
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"export answered {response.status}: {response.read()[:500]!r}")
    written = 0
    with target.open("wb") as sink:
        while chunk := response.read(CHUNK):
            sink.write(chunk)
            written += len(chunk)
    seconds = time.perf_counter() - started
    headers = {name.lower(): value for name, value in response.getheaders()}
    conn.close()
    return seconds, written, headers


def multipart_body(path: Path, boundary: str) -> tuple[Iterator[bytes], int]:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{path.name}"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    config = (
        f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="config"\r\n\r\n{{"mode": "merge"}}'
        f"\r\n--{boundary}--\r\n"
    ).encode()

    def chunks() -> Iterator[bytes]:
        yield head
        with path.open("rb") as source:
            while chunk := source.read(CHUNK):
                yield chunk
        yield config

    return chunks(), len(head) + path.stat().st_size + len(config)


def import_file(port: int, key: str, path: Path) -> tuple[float, dict[str, Any]]:
    boundary = uuid.uuid4().hex
    body, length = multipart_body(path, boundary)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1800)
    started = time.perf_counter()
    conn.putrequest("POST", "/api/v1/import")
    conn.putheader("X-API-Key", key)
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(length))
    conn.endheaders()
    for chunk in body:
        conn.send(chunk)
    response = conn.getresponse()
    payload = json.loads(response.read())
    seconds = time.perf_counter() - started
    conn.close()
    if response.status != 200 or not payload.get("success"):
        raise RuntimeError(f"import answered {response.status}: {json.dumps(payload)[:1000]}")
    return seconds, payload


def bench_files(gib: float, count: int, work: Path, rounds: int = 3, sink: str = "disk") -> dict[str, Any]:
    """``sink``: where the baseline's archive and the downloads are written: ``disk`` (the work folder) or
    ``memory`` (a tmpfs, /dev/shm: both sides then measure CPU, not this machine's disk, whose writeback speed
    varies by 2x between runs)."""
    total = int(gib * 1024 * MIB)
    lora_dir = work / "loras"
    files = write_big_files(lora_dir, total, count)
    env = base_env(work / "data", lora_dir)
    subprocess.run(manage("import_loras", "--no-progress", "--no-embeddings"), cwd=ROOT, env=env, check=True,
                   capture_output=True)  # fmt: skip
    key = api_key(env)
    file_bytes = sum(path.stat().st_size for path in files)
    results: dict[str, Any] = {"files": count, "file_bytes": file_bytes, "rounds": rounds, "sink": sink}
    out = Path(tempfile.mkdtemp(prefix="loraforge-bench-", dir="/dev/shm")) if sink == "memory" else work
    baseline: list[float] = []
    runs: list[dict[str, Any]] = []
    port = free_port()
    server = start_server(env, port)
    try:
        ids = _adapter_ids(port, key)
        body = {"loras": True, "lora_files": True, "lora_metadata": True, "max_size_mb": 1_048_576}
        # Interleaved rounds, each timed run from the same state: the written data of the run before flushed to
        # disk (os.sync, not timed) and its file removed, so neither side pays for the other's writeback.
        for round_index in range(rounds):
            os.sync()
            baseline.append(baseline_zip(files, out / "baseline.zip"))
            for label, selected in (("half", ids[: len(ids) // 2]), ("all", None)):
                if label == "half" and round_index:
                    continue  # the half archive is measured once: its peak RSS against the whole one's
                target = out / f"export-{label}.zip"
                target.unlink(missing_ok=True)
                os.sync()
                with PeakRss(server.pid) as rss:
                    seconds, size, headers = export_to_file(port, key, {**body, "adapter_ids": selected}, target)
                run = {"label": label, "round": round_index, "seconds": seconds, "bytes": size}
                runs.append({**run, "peak_rss_mib": rss.peak_mib, "content_length": headers.get("content-length")})
                if label == "half":
                    target.unlink()
    finally:
        server.terminate()
        server.wait(timeout=30)
    results["baseline_seconds"] = baseline
    results["export"] = runs
    if out != work:
        shutil.move(out / "export-all.zip", work / "export-all.zip")
        shutil.rmtree(out, ignore_errors=True)
    archive = work / "export-all.zip"
    target_env = base_env(work / "data-import", work / "loras-import")
    target_env["LORAFORGE_MAX_UPLOAD_MB"] = str(int(archive.stat().st_size / MIB) + 64)  # 2 GiB exceeds the default
    target_key = api_key(target_env)
    port = free_port()
    server = start_server(target_env, port)
    try:
        with PeakRss(server.pid) as rss:
            seconds, payload = import_file(port, target_key, archive)
        results["import"] = {"seconds": seconds, "bytes": archive.stat().st_size, "peak_rss_mib": rss.peak_mib,
                             "created": payload["results"][0].get("created")}  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
    best = min(baseline)
    results["baseline_mib_s"] = round(file_bytes / MIB / best, 1)
    for run in results["export"]:
        run["mib_s"] = round(run["bytes"] / MIB / run["seconds"], 1)
        run["ratio"] = round(run["mib_s"] / results["baseline_mib_s"], 3)
    whole = [run for run in runs if run["label"] == "all"]
    results["export_all_best_ratio"] = max(run["ratio"] for run in whole)
    results["export_all_median_ratio"] = sorted(run["ratio"] for run in whole)[len(whole) // 2]
    results["import"]["mib_s"] = round(results["import"]["bytes"] / MIB / results["import"]["seconds"], 1)
    results["import"]["ratio"] = round(results["import"]["mib_s"] / results["baseline_mib_s"], 3)
    return results


def _adapter_ids(port: int, key: str) -> list[str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/api/v1/adapters?per_page=200", headers={"X-API-Key": key})
    payload = json.loads(conn.getresponse().read())
    conn.close()
    return [item["id"] for item in payload["items"]]


# --- metadata: backup and restore of a large library --------------------------------------------------------------


def seed_library(adapters: int, jobs: int) -> dict[str, Any]:
    """In a child process whose environment names the installation (``python -m bench.archives seed``)."""
    import django

    django.setup()
    from django.db import connection, transaction

    from adapters.models import Adapter
    from analytics import db_triggers
    from analytics.rollups import rollups_rebuild
    from bench.analytics import JOB_COLUMNS, LINK_COLUMNS, _insert, job_rows
    from bench.seed import seed_adapters

    started = time.perf_counter()
    seed_adapters(adapters)
    rows = list(Adapter.objects.values_list("id", "name", "sdnext_name"))
    rng = random.Random(13)
    now = datetime.now(UTC)
    db_triggers.uninstall(connection)
    for offset in range(0, jobs, 50_000):
        job_batch, links = job_rows(min(50_000, jobs - offset), now, rng, rows)
        with transaction.atomic():
            _insert(connection, db_triggers.JOBS, JOB_COLUMNS, job_batch)
            _insert(connection, db_triggers.LINKS, LINK_COLUMNS, links)
    rollups_rebuild()
    db_triggers.install(connection)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    connection.close()
    return {"adapters": adapters, "jobs": jobs, "seed_seconds": round(time.perf_counter() - started, 1)}


def table_counts(env: dict[str, str]) -> dict[str, int]:
    code = (
        "import json; from adapters.models import Adapter; from deliveries.models import DeliveryJob, "
        "DeliveryJobAdapter; print(json.dumps({'adapters': Adapter.objects.count(), 'jobs': "
        "DeliveryJob.objects.count(), 'links': DeliveryJobAdapter.objects.count()}))"
    )
    result = subprocess.run(manage("shell", "-c", code), cwd=ROOT, env=env, capture_output=True, text=True,
                            check=True)  # fmt: skip
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _tail(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout.strip()[-400:]


def bench_metadata(db: str, adapters: int, jobs: int, work: Path) -> dict[str, Any]:
    url = fresh_pg("bench_archives") if db == "postgres" else None
    env = base_env(work / "data", work / "loras", url)
    results: dict[str, Any] = {"db": db}
    seeding = subprocess.run(
        [sys.executable, "-m", "bench.archives", "seed", "--adapters", str(adapters), "--jobs", str(jobs)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    results["seed"] = json.loads(seeding.stdout.strip().splitlines()[-1])
    seconds, rss, done = run_measured(manage("backup", "--type", "metadata_only", "--no-retention", "--json"), env)
    backup = json.loads(done.stdout)
    archive = work / "data" / "backups" / backup["file_name"]
    results["backup"] = {"seconds": round(seconds, 1), "peak_rss_mib": rss, "bytes": archive.stat().st_size,
                         "counts": backup["counts"]}  # fmt: skip
    # By its id: the stored backup is verified whole and bounded by its own member count.
    seconds, rss, done = run_measured(manage("restore_backup", backup["id"], "--mode", "merge", "--json"), env)
    results["restore_merge_same_db"] = {"seconds": round(seconds, 1), "peak_rss_mib": rss, "output": _tail(done)}
    kept = work / "archive.zip"
    shutil.copy(archive, kept)
    empty_url = fresh_pg("bench_archives_empty") if db == "postgres" else None
    empty_env = base_env(work / "data-empty", work / "loras-empty", empty_url)
    # A file from elsewhere is bounded by LORAFORGE_IMPORT_MAX_MEMBERS (100,000): a 100,000-adapter library holds more.
    empty_env["LORAFORGE_IMPORT_MAX_MEMBERS"] = "1000000"
    seconds, rss, done = run_measured(manage("restore_backup", str(kept), "--mode", "merge", "--json"), empty_env)
    results["restore_merge_empty_db"] = {"seconds": round(seconds, 1), "peak_rss_mib": rss, "output": _tail(done)}
    results["counts_source"] = table_counts(env)
    results["counts_restored"] = table_counts(empty_env)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["files", "metadata", "seed"], help="seed: internal, run by metadata")
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--count", type=int, default=16, help="LoRA files (files mode)")
    parser.add_argument("--rounds", type=int, default=3, help="files mode: interleaved baseline/export rounds")
    parser.add_argument("--sink", choices=["disk", "memory"], default="disk", help="files mode: where archives land")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--adapters", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    if args.mode == "seed":
        print(json.dumps(seed_library(args.adapters, args.jobs)))
        return
    work = Path(tempfile.mkdtemp(prefix="loraforge-bench-archives-"))
    try:
        if args.mode == "files":
            results = bench_files(args.gib, args.count, work, args.rounds, args.sink)
        else:
            results = bench_metadata(args.db, args.adapters, args.jobs, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(results, indent=2)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)


if __name__ == "__main__":
    main()
