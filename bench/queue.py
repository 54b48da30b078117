"""Generation queue benchmark (issue 4 figures). ``--shape distributed`` (default): Redis, one uvicorn web process,
one Celery worker process; ``--shape embedded``: ``make run``'s single process (embedded worker, in-memory broker and
channel layer). Fake SDNext servers answer at once.

1. enqueue → txt2img received: ``POST /generation/queue-generation`` until the fake SDNext receives the
   txt2img request, one job at a time (p50/p99). Baseline in the same run: ``GET /api/health`` round trip.
2. jobs per second sustained with 2 backends (baseline: the same with 1 backend), with instant fakes and with
   fakes that take ~0.1 s per job.
3. progress → WebSocket client latency with 1, 100 and 500 connected clients: the worker's event timestamp
   to its arrival at every client (p50/p99), while a fake that takes ~1 s per job reports progress.
4. RSS of the web process with 0 and 500 sockets.

    .venv/bin/python -m bench.queue [--db sqlite|postgres] [--jobs 100] [--throughput-jobs 120]

Run it as a module: as a script its folder would come first on ``sys.path`` and shadow the standard ``queue``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.adapters_api import free_port  # noqa: E402
from tests.fakes.sdnext import FakeSDNext  # noqa: E402

PYTHON = sys.executable
REDIS = "redis://127.0.0.1:6379/13"
TINY = {"steps": 4, "width": 64, "height": 64}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(1000 * statistics.median(values), 2),
        "p99_ms": round(1000 * percentile(values, 0.99), 2),
        "max_ms": round(1000 * max(values), 2),
    }


# --- set-up ----------------------------------------------------------------------------------------


def environment(args: argparse.Namespace, fake_url: str) -> dict[str, str]:
    data_dir = Path(tempfile.mkdtemp(prefix="loraforge-queue-bench-"))
    env = {
        **os.environ,
        "LORAFORGE_DATA_DIR": str(data_dir),
        "LORAFORGE_LOG_LEVEL": "warning",
        "DJANGO_SETTINGS_MODULE": "loraforge.settings",
        "SDNEXT_URL": fake_url,
        "SDNEXT_POLL_INTERVAL": "0.2",
        "LORAFORGE_API_CACHE_ENTRIES": "0",
    }
    if args.shape == "distributed":
        env["REDIS_URL"] = REDIS
    else:  # make run's shape: the worker runs inside the web process, in-memory broker and channel layer
        env.pop("REDIS_URL", None)
        env["LORAFORGE_EMBEDDED_WORKER"] = "auto"
    if args.db == "postgres":
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS loraforge_queue_bench")
            conn.execute("CREATE DATABASE loraforge_queue_bench")
        env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/loraforge_queue_bench"
    else:
        env.pop("DATABASE_URL", None)
    return env


def prepare(env: dict[str, str]) -> str:
    if "REDIS_URL" in env:
        import redis

        redis.Redis.from_url(REDIS).flushdb()
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    made = subprocess.run(
        [PYTHON, "manage.py", "create_api_key", "--name", "bench"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return made.stdout.strip()


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as stream:
        return subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=stream, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def wait_http(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


class Api:
    def __init__(self, base: str, key: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers["X-API-Key"] = key

    def queue(self, prompt: str, backend: str = "sdnext", **params: Any) -> str:
        response = self.session.post(
            f"{self.base}/api/v1/generation/queue-generation",
            params={"backend": backend},
            json={"prompt": prompt, **TINY, **params},
            timeout=30,
        )
        response.raise_for_status()
        return str(response.json()["job_id"])

    def status(self, job_id: str) -> str:
        response = self.session.get(f"{self.base}/api/v1/generation/progress/{job_id}", timeout=30)
        response.raise_for_status()
        return str(response.json()["status"])

    def wait_done(self, job_id: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(job_id)
            if status in ("completed", "failed", "cancelled"):
                return status
            time.sleep(0.02)
        raise SystemExit(f"job {job_id} did not finish")


# --- 1. enqueue → txt2img received ----------------------------------------------------------------


def txt2img_arrival(fake: FakeSDNext, prompt: str, timeout: float = 30) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for request in list(fake.requests):
            if (
                request.path == "/sdapi/v1/txt2img"
                and isinstance(request.body, dict)
                and request.body["prompt"] == prompt
            ):
                return request.received_at
        time.sleep(0.001)
    raise SystemExit("txt2img never arrived")


def enqueue_latency(api: Api, fake: FakeSDNext, jobs: int) -> dict[str, Any]:
    health: list[float] = []
    latencies: list[float] = []
    for index in range(jobs):
        started = time.perf_counter()
        api.session.get(f"{api.base}/api/health", timeout=10)
        health.append(time.perf_counter() - started)
        prompt = f"latency probe {index} {uuid.uuid4().hex}"
        sent = time.time()
        job_id = api.queue(prompt, backend="default")
        latencies.append(txt2img_arrival(fake, prompt) - sent)
        api.wait_done(job_id)
    measured, baseline = summary(latencies), summary(health)
    ratio = round(measured["p50_ms"] / baseline["p50_ms"], 1)
    return {"enqueue_to_txt2img": measured, "baseline_health": baseline, "ratio_p50": ratio}


# --- 2. throughput ---------------------------------------------------------------------------------


def throughput(api: Api, jobs: int, backend: str) -> dict[str, Any]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(lambda index: api.queue(f"throughput {backend} {index}", backend=backend), range(jobs)))
        statuses = list(pool.map(api.wait_done, ids))
    elapsed = time.perf_counter() - started
    return {
        "backend": backend,
        "jobs": jobs,
        "seconds": round(elapsed, 2),
        "jobs_per_s": round(jobs / elapsed, 2),
        "completed": statuses.count("completed"),
    }


# --- 3. progress → WebSocket latency ----------------------------------------------------------------


def event_age(event: dict[str, Any], received: float) -> float:
    sent = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
    return received - sent


async def _client(url: str, ready: asyncio.Event, counter: list[int], total: int, ages: list[float]) -> Any:
    import websockets

    socket = await websockets.connect(url, open_timeout=60, max_queue=None)
    await socket.recv()
    await socket.send(json.dumps({"type": "subscribe", "job_ids": None}))
    await socket.recv()
    counter[0] += 1
    if counter[0] == total:
        ready.set()

    async def read() -> None:
        async for frame in socket:
            received = time.time()
            event = json.loads(frame)
            if event["type"] == "progress_update" and not event["data"]["snapshot"]:
                ages.append(event_age(event, received))

    return socket, asyncio.create_task(read())


async def socket_latency(ws_url: str, api: Api, clients: int, jobs: int, web_pid: int) -> dict[str, Any]:
    import psutil

    ages: list[float] = []
    ready = asyncio.Event()
    counter = [0]
    rss_before = psutil.Process(web_pid).memory_info().rss
    opened = []
    for batch in range(0, clients, 50):
        size = min(50, clients - batch)
        opened += await asyncio.gather(*(_client(ws_url, ready, counter, clients, ages) for _ in range(size)))
    await asyncio.wait_for(ready.wait(), 120)
    rss_connected = psutil.Process(web_pid).memory_info().rss
    for index in range(jobs):
        job_id = await asyncio.to_thread(api.queue, f"progress probe {clients} {index}", "progress", steps=20)
        await asyncio.to_thread(api.wait_done, job_id)
    await asyncio.sleep(1.0)
    for socket, task in opened:
        task.cancel()
        await socket.close()
    return {
        "clients": clients,
        "events": len(ages),
        **summary(ages),
        "web_rss_mib_before": round(rss_before / 2**20, 1),
        "web_rss_mib_connected": round(rss_connected / 2**20, 1),
    }


# --- main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--shape", choices=["distributed", "embedded"], default="distributed")
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--throughput-jobs", type=int, default=120)
    parser.add_argument("--timed-jobs", type=int, default=40)
    parser.add_argument("--progress-jobs", type=int, default=3)
    parser.add_argument("--clients", default="1,100,500")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()

    fakes = [FakeSDNext(steps_delay=0.0), FakeSDNext(steps_delay=0.0)]
    for fake in fakes:
        fake.start()
    env = environment(args, fakes[0].url)
    key = prepare(env)
    logs = Path(env["LORAFORGE_DATA_DIR"])
    port = free_port()
    progress_port = free_port()
    web = start(
        [
            PYTHON,
            "-m",
            "uvicorn",
            "loraforge.asgi:application",
            "--port",
            str(port),
            "--lifespan",
            "on",
            "--no-access-log",
        ],
        env,
        logs / "web.log",
    )
    celery = [PYTHON, "-m", "celery", "-A", "loraforge", "worker", "-Q", "generation,default"]
    celery += ["-P", "threads", "-c", "4"]
    workers = [start(celery, env, logs / "worker.log")] if args.shape == "distributed" else []
    slow = start(
        [PYTHON, "-m", "tests.fakes.sdnext", "--port", str(progress_port), "--steps-delay", "0.05"],
        env,
        logs / "fake.log",
    )
    results: dict[str, Any] = {"db": args.db, "shape": args.shape}
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/api/health")
        api = Api(base, key)
        for name, url in (("second", fakes[1].url), ("progress", f"http://127.0.0.1:{progress_port}")):
            api.session.post(f"{base}/api/v1/generation/backends", json={"name": name, "url": url}, timeout=30)
        time.sleep(3)  # the worker is consuming
        api.wait_done(api.queue("warm-up", backend="default"))
        results["latency"] = enqueue_latency(api, fakes[0], args.jobs)
        print(json.dumps(results["latency"]), flush=True)
        _disable(api, base, "progress")
        results["throughput_1_backend"] = throughput(api, args.throughput_jobs, "default")
        results["throughput_2_backends"] = throughput(api, args.throughput_jobs, "sdnext")
        results["throughput_ratio"] = round(
            results["throughput_2_backends"]["jobs_per_s"] / results["throughput_1_backend"]["jobs_per_s"], 2
        )
        for fake in fakes:  # jobs that take ~0.1 s on the GPU: does a second backend double the rate?
            fake.steps_delay = 0.025
        results["timed_1_backend"] = throughput(api, args.timed_jobs, "default")
        results["timed_2_backends"] = throughput(api, args.timed_jobs, "sdnext")
        results["timed_ratio"] = round(
            results["timed_2_backends"]["jobs_per_s"] / results["timed_1_backend"]["jobs_per_s"], 2
        )
        print(json.dumps({key: results[key] for key in results if "throughput" in key or "timed" in key}), flush=True)
        _disable(api, base, "progress", enabled=True)
        ws_url = f"ws://127.0.0.1:{port}/api/v1/ws/progress?api_key={key}"
        results["websocket"] = []
        for clients in (int(value) for value in args.clients.split(",")):
            row = asyncio.run(socket_latency(ws_url, api, clients, args.progress_jobs, web.pid))
            results["websocket"].append(row)
            print(json.dumps(row), flush=True)
    finally:
        for proc in (*workers, web, slow):
            stop(proc)
        for fake in fakes:
            fake.stop()
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


def _disable(api: Api, base: str, name: str, *, enabled: bool = False) -> None:
    """Keep the slow progress backend out of the ``sdnext`` (any backend) throughput runs."""
    backends = api.session.get(f"{base}/api/v1/generation/backends", timeout=30).json()["backends"]
    for backend in backends:
        if backend["name"] == name:
            api.session.patch(
                f"{base}/api/v1/generation/backends/{backend['id']}", json={"enabled": enabled}, timeout=30
            ).raise_for_status()


if __name__ == "__main__":
    threading.stack_size(512 * 1024)
    main()
