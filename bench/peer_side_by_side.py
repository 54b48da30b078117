"""The side-by-side workload (issue 9) against LoRAForge as a user starts it, with its in-run baseline.

Writes the tiny ``.safetensors`` fixtures, migrates a fresh data folder, starts the server exactly as ``make run``
does (one uvicorn process, SQLite, the embedded worker), measures ``GET /api/health`` (the baseline: a request that
does no work) at 1 and 8 clients, then runs ``../shared/bench/peer_load.py run`` over HTTP: 10,000 creates (2,000
at 1 client, 8,000 at 8), the list/search/tag/sort phases, get by id and compose at 1 and 8 clients. With
``--more-batches N`` (``--second-batch``: 1) it then creates another 10,000 adapters N times (each batch followed by
50 requests per phase, the adapters the last batch activated deactivated first) and reports the RSS after each,
read twice: at once, and settled (the embedded worker has embedded every adapter and the heap trimmer has run). The
settled RSS must stay flat.

    .venv/bin/python -m bench.peer_side_by_side                      # page cache on (the default)
    .venv/bin/python -m bench.peer_side_by_side --cache-entries 0    # every read uncached
    .venv/bin/python -m bench.peer_side_by_side --db postgres --count 2000

Results (JSON) land in ``bench/results/``; ``docs/PERFORMANCE.md`` records them as ratios to the baseline.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.adapters_api import MAKE_RUN, free_port, start_server  # noqa: E402

PEER_LOAD = ROOT.parent / "shared" / "bench" / "peer_load.py"
API_KEY = "lf_benchkey_side-by-side-0123456789"


def environment(args: argparse.Namespace, data_dir: Path, loras: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "LORAFORGE_DATA_DIR": str(data_dir),
        "LORAFORGE_LORA_DIRS": str(loras),
        "LORAFORGE_LOG_LEVEL": "warning",
        "LORAFORGE_API_KEY": API_KEY,
        "LORAFORGE_API_CACHE_ENTRIES": str(args.cache_entries),
        "LORAFORGE_EMBEDDING_MODEL": "off" if args.embeddings == "off" else "sentence-transformers/all-MiniLM-L6-v2",
        "DJANGO_SETTINGS_MODULE": "loraforge.settings",
    }
    for name in ("REDIS_URL", "DATABASE_URL", "LORAFORGE_EMBEDDED_WORKER"):
        env.pop(name, None)
    if args.db == "postgres":
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS loraforge_peer")
            conn.execute("CREATE DATABASE loraforge_peer")
        env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/loraforge_peer"
    return env


def health_baseline(port: int, concurrency: int, requests: int = 600) -> dict[str, float]:
    """``GET /api/health``: the cost of the framework alone, measured in the same run."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            started = time.perf_counter()
            connection.request("GET", "/api/health")
            connection.getresponse().read()
            with lock:
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {"concurrency": concurrency, "rps": round(len(latencies) / wall, 1),
            "median_ms": round(statistics.median(latencies) * 1000, 2)}  # fmt: skip


def peer_load(port: int, loras: Path, server: subprocess.Popen[bytes], out: Path, *extra: str) -> dict:
    argv = [sys.executable, str(PEER_LOAD), "run", "--base-url", f"http://127.0.0.1:{port}", "--prefix", "/api/v1"]
    argv += ["--api-key", API_KEY, "--lora-dir", str(loras), "--server-pid", str(server.pid), "--out", str(out)]
    argv += ["--requests", "300", "--max-seconds", "45", "--extra-get", "/adapters/tags", *extra]
    subprocess.run(argv, check=True)
    return dict(json.loads(out.read_text()))


def deactivate_all(port: int) -> None:
    """Deactivate every active adapter through the API (``POST /adapters/bulk``)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
    connection.request("GET", "/api/v1/adapters?active=true&per_page=200", headers=headers)
    ids = [item["id"] for item in json.loads(connection.getresponse().read())["items"]]
    if ids:
        body = json.dumps({"action": "deactivate", "lora_ids": ids})
        connection.request("POST", "/api/v1/adapters/bulk", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"bulk deactivate answered {response.status}")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


PENDING_SQL = (
    "SELECT count(*) FROM adapters_adapter a LEFT JOIN recommendations_adapterembedding e ON e.adapter_id = a.id"
    " WHERE e.adapter_id IS NULL OR e.computed_at < a.updated_at"
)
TRIM_WAIT_SECONDS = 12.0  # longer than the server's heap-trimmer interval (10 s)


def embeddings_pending(env: dict[str, str], data_dir: Path) -> int:
    """Adapters the embedded worker has still to embed, read from the database beside the server."""
    if "DATABASE_URL" in env:
        import psycopg

        with psycopg.connect(env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)) as conn:
            row = conn.execute(PENDING_SQL).fetchone()
    else:
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(f"file:{data_dir / 'db.sqlite3'}?mode=ro", uri=True, timeout=30)) as conn:
            row = conn.execute(PENDING_SQL).fetchone()
    return int(row[0]) if row else 0


def settled_rss(pid: int, env: dict[str, str], data_dir: Path, embeddings: bool, limit: float = 900.0) -> dict:
    """RSS once the server is quiet: the embedded worker has embedded every adapter (with embeddings on), the heap
    trimmer has run, and then the median of 5 readings a second apart. What "flat" is judged on: RSS read right
    after a batch also holds the work still queued (the embeddings backlog) and what the trimmer has yet to free."""
    started = time.monotonic()
    while embeddings and time.monotonic() - started < limit and embeddings_pending(env, data_dir):
        time.sleep(2.0)
    waited = time.monotonic() - started
    time.sleep(TRIM_WAIT_SECONDS)
    readings = []
    for _ in range(5):
        readings.append(rss_mib(pid))
        time.sleep(1.0)
    return {"rss_mib": statistics.median(readings), "drain_seconds": round(waited, 1),
            "pending": embeddings_pending(env, data_dir) if embeddings else None}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--count", type=int, default=10_000, help="adapters created (2,000 at c=1, the rest at c=8)")
    parser.add_argument("--cache-entries", type=int, default=512, help="LORAFORGE_API_CACHE_ENTRIES (0 = off)")
    parser.add_argument(
        "--embeddings", choices=("on", "off"), default="on", help="semantic embeddings computed after creates (on)"
    )
    parser.add_argument("--second-batch", action="store_true", help="the same as --more-batches 1")
    parser.add_argument("--more-batches", type=int, default=0, help="create another --count adapters N times")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    more = max(args.more_batches, 1 if args.second_batch else 0)

    work = Path(tempfile.mkdtemp(prefix="loraforge-peer-"))
    loras, data_dir = work / "loras", work / "data"
    total = args.count * (1 + more)
    subprocess.run([sys.executable, str(PEER_LOAD), "fixtures", "--dir", str(loras), "--count", str(total)], check=True)
    env = environment(args, data_dir, loras)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    server = start_server(env, port, flags=MAKE_RUN, log=work / "server.log")
    results: dict = {"label": args.label, "db": args.db, "cache_entries": args.cache_entries, "count": args.count}
    try:
        time.sleep(1.0)
        results["rss_idle_mib"] = rss_mib(server.pid)
        results["baseline"] = [health_baseline(port, 1), health_baseline(port, 8)]
        print("baseline GET /api/health:", results["baseline"], flush=True)
        first = args.count // 5
        split = f"{first},{args.count - first}"
        results["peer"] = peer_load(port, loras, server, work / "peer.json", "--create-split", split)
        results["rss_after_batches_mib"] = [rss_mib(server.pid)]
        embeddings = args.embeddings == "on"
        results["settled"] = [settled_rss(server.pid, env, data_dir, embeddings)] if more else []
        for batch in range(1, more + 1):
            deactivate_all(port)  # the batch's compose phase checks the 10 adapters it activates
            start = str(args.count * batch)
            extra = ["--create-split", f"0,{args.count}", "--create-start", start, "--requests", "50"]
            results[f"batch_{batch + 1}"] = peer_load(port, loras, server, work / f"peer{batch + 1}.json", *extra)
            results["rss_after_batches_mib"].append(rss_mib(server.pid))
            results["settled"].append(settled_rss(server.pid, env, data_dir, embeddings))
            print("RSS after each batch (MiB):", results["rss_after_batches_mib"], flush=True)
            print("settled:", results["settled"], flush=True)
        results["rss_end_mib"] = rss_mib(server.pid)
        results["errors_in_log"] = (work / "server.log").read_text(errors="replace").count("ERROR")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    name = f"peer-{args.db}-cache{args.cache_entries}{('-' + args.label) if args.label else ''}.json"
    (out_dir / name).write_text(json.dumps(results, indent=2))
    summarise(results)
    print("results ->", out_dir / name)


def summarise(results: dict) -> None:
    base = {row["concurrency"]: row for row in results["baseline"]}
    print(f"\n{'phase':<24}{'c=1 median ms':>14}{'c=8 rps':>10}{'c=8 errors':>11}{'p99 ms':>9}  (x health c=8 rps)")
    phases: dict[str, dict[int, dict]] = {}
    for phase in results["peer"]["phases"]:
        phases.setdefault(phase["phase"], {})[phase["concurrency"]] = phase
    for name, by_c in phases.items():
        one, eight = by_c.get(1, {}), by_c.get(8, {})
        ratio = (eight.get("rps") or 0) / base[8]["rps"] if base[8]["rps"] else 0
        row = f"{name:<24}{one.get('median_ms')!s:>14}{eight.get('rps')!s:>10}{eight.get('errors')!s:>11}"
        print(f"{row}{eight.get('p99_ms')!s:>9}  ({ratio:.2f})")
    print("memory:", results["peer"]["memory"], "end:", results.get("rss_end_mib"))
    print("RSS after each batch (MiB):", results.get("rss_after_batches_mib"))
    print("RSS settled after each batch (MiB):", [row["rss_mib"] for row in results.get("settled", [])])


if __name__ == "__main__":
    main()
