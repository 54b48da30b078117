"""Adapters API benchmark (issue: foundation figures).

Seeds N adapters (bulk insert, realistic names and a ~200-tag vocabulary), starts the real ASGI
server (uvicorn) and measures median/p95 latency and requests/s for the list, search, filter, sort,
detail and compose endpoints with 1 and 8 concurrent keep-alive clients. The in-run baseline is
``GET /api/health`` on the same server (the cost of a request that touches no database).

    .venv/bin/python -m bench.adapters_api --db sqlite --count 100000
    .venv/bin/python -m bench.adapters_api --db postgres --count 100000
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare_environment(args: argparse.Namespace, *, database: str = "loraforge_bench") -> dict[str, str]:
    """The environment of a benchmark's processes: a data folder (``args.reuse`` or a new one) and, with
    ``args.db == "postgres"``, the PostgreSQL database ``database`` (made again unless reused)."""
    data_dir = args.reuse or Path(tempfile.mkdtemp(prefix="loraforge-bench-"))
    env = {
        **os.environ,
        "LORAFORGE_DATA_DIR": str(data_dir),
        "LORAFORGE_LOG_LEVEL": "warning",
        "LORAFORGE_EMBEDDED_WORKER": "off",
        "DJANGO_SETTINGS_MODULE": "loraforge.settings",
    }
    env.pop("REDIS_URL", None)
    if args.db == "postgres" and args.reuse is None:
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database}")
            conn.execute(f"CREATE DATABASE {database}")
    if args.db == "postgres":
        env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{database}"
    else:
        env.pop("DATABASE_URL", None)
    return env


def seed(env: dict[str, str], count: int, active: int) -> tuple[str, list[str], list[str]]:
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from adapters.models import Adapter
    from bench.seed import seed_adapters
    from loraforge.api_keys import api_key_create

    started = time.perf_counter()
    seed_adapters(count)
    print(f"seeded {count} adapters in {time.perf_counter() - started:.1f} s", flush=True)
    ids = [str(pk) for pk in Adapter.objects.order_by("?").values_list("pk", flat=True)[:200]]
    active_ids = ids[:active]
    Adapter.objects.filter(pk__in=active_ids).update(active=True)
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE adapters_adapter")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    key = api_key_create(name="bench").plain_key
    connection.close()
    return key, ids, active_ids


QUIET = ("--log-level", "warning", "--no-access-log")
MAKE_RUN = ("--no-server-header", "--timeout-graceful-shutdown", "10")  # exactly what `make run` passes


def start_server(
    env: dict[str, str], port: int, *, flags: tuple[str, ...] = QUIET, log: Path | None = None, cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    """One web process. Several are started on several ports, as behind a load balancer: uvicorn's own
    ``--workers`` mode accepts connections without TCP_NODELAY (its listening socket has proto 0), which
    adds a 40 ms delayed-ACK stall to every small response. ``flags`` are uvicorn's; ``log`` takes its output;
    ``cwd`` is the checkout whose code it runs."""
    command = [
        sys.executable, "-m", "uvicorn", "loraforge.asgi:application", "--host", "127.0.0.1", "--port", str(port),
        "--lifespan", "on", *flags,
    ]  # fmt: skip
    output = log.open("wb") if log is not None else None
    process = subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True, stdout=output, stderr=output)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not start")


class Scenario:
    def __init__(self, name: str, method: str, paths: list[str], body: bytes | None = None) -> None:
        self.name, self.method, self.paths, self.body = name, method, paths, body


def run_clients(ports: list[int], key: str, scenario: Scenario, clients: int, duration: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + duration
    headers = {"X-API-Key": key, "Content-Type": "application/json", "Connection": "keep-alive"}

    def client(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", ports[offset % len(ports)], timeout=30)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as curl and browsers do
        local: list[float] = []
        bad = 0
        index = offset
        while time.monotonic() < stop_at:
            path = scenario.paths[index % len(scenario.paths)]
            index += 1
            started = time.perf_counter()
            conn.request(scenario.method, path, body=scenario.body, headers=headers)
            response = conn.getresponse()
            response.read()
            local.append(time.perf_counter() - started)
            if response.status >= 400:
                bad += 1
        conn.close()
        with lock:
            latencies.extend(local)
            errors[0] += bad

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors[0],
        "rps": len(latencies) / elapsed,
        "median_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
    }


def format_row(row: dict) -> str:
    return (
        f"{row['scenario']:<24} c={row['clients']:<2} median {row['median_ms']:7.2f} ms  p95 {row['p95_ms']:7.2f} ms"
        f"  {row['rps']:8.1f} req/s  errors {row['errors']}"
    )


def scenarios(ids: list[str], active_ids: list[str]) -> list[Scenario]:
    compose = json.dumps({"adapter_ids": None, "prefix": "masterpiece", "include_triggers": True}).encode()
    return [
        Scenario("health (baseline)", "GET", ["/api/health"]),
        Scenario("list page 1", "GET", ["/api/v1/adapters?per_page=50"]),
        Scenario("list page 150", "GET", ["/api/v1/adapters?per_page=50&page=150"]),
        Scenario("search=portrait", "GET", ["/api/v1/adapters?per_page=50&search=portrait"]),
        Scenario("tags=anime", "GET", ["/api/v1/adapters?per_page=50&tags=anime"]),
        Scenario("sort=created_at", "GET", ["/api/v1/adapters?per_page=50&sort=created_at"]),
        Scenario("get by id", "GET", [f"/api/v1/adapters/{pk}" for pk in ids]),
        Scenario(f"compose ({len(active_ids)} active)", "POST", ["/api/v1/compose"], compose),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per scenario and concurrency")
    parser.add_argument("--clients", default="1,8")
    parser.add_argument("--processes", type=int, default=1, help="web processes (one port each)")
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--reuse", type=Path, default=None, help="data folder of an earlier run: skip seeding")
    args = parser.parse_args()

    env = prepare_environment(args)
    state_file = Path(env["LORAFORGE_DATA_DIR"]) / "bench-state.json"
    if args.reuse is not None:
        key, ids, active_ids = json.loads(state_file.read_text())
    else:
        key, ids, active_ids = seed(env, args.count, active=10)
        state_file.write_text(json.dumps([key, ids, active_ids]))
    print(f"data folder: {env['LORAFORGE_DATA_DIR']}", flush=True)
    ports = [free_port() for _ in range(args.processes)]
    servers = [start_server(env, port) for port in ports]
    results = []
    try:
        for scenario in scenarios(ids, active_ids):
            run_clients(ports, key, scenario, len(ports), 0.5)  # warm-up
            for clients in (int(c) for c in args.clients.split(",")):
                measured = run_clients(ports, key, scenario, clients, args.duration)
                row = {"scenario": scenario.name, "clients": clients, **measured}
                results.append(row)
                print(format_row(row), flush=True)
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        meta = {"db": args.db, "count": args.count, "processes": args.processes, "duration": args.duration}
        args.output.write_text(json.dumps({"meta": meta, "results": results}, indent=2))


if __name__ == "__main__":
    main()
