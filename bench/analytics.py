"""Analytics benchmark (issue 12): the report endpoints over many generation jobs.

Seeds ADAPTERS adapters and N generation jobs spread over 30 days (2-4 adapters each, 10 % failed over 6 error
codes), starts the real ASGI server (uvicorn) and measures, with one keep-alive client, the first (cold) request
and the median of repeated requests for every path of ``PATHS``, against ``GET /api/health`` in the same run.

Seeding writes the rows in bulk (PostgreSQL ``COPY``, SQLite ``executemany``) with the analytics triggers dropped,
then fills the rollups with ``rollups_rebuild()`` and puts the triggers back (much faster than per-row triggers for
a million rows; the same code paths are proven equal by tests/analytics/test_rollups.py). It then times trigger-
maintained writes (bulk job + link inserts and status transitions) with and without the triggers.

    .venv/bin/python -m bench.analytics --db postgres --jobs 100000,1000000
    .venv/bin/python -m bench.analytics --db sqlite --jobs 100000
"""

# ruff: noqa: S608 - SQL built from module constants

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.adapters_api import free_port, start_server  # noqa: E402

PG_URL = "postgres://postgres@127.0.0.1:5432/bench_analytics"
ADAPTERS = 500
ERRORS = {
    "backend_unreachable": ["Cannot reach SDNext backend 'default': connection refused"],
    "backend_timeout": ["SDNext did not answer within 600 s", "Read timed out"],
    "backend_error": ["SDNext answered HTTP 500"],
    "backend_auth": ["SDNext answered HTTP 401"],
    "invalid_result": ["SDNext returned no images"],
    "queue_timeout": ["No backend became free within 3600 s"],
}
RANGES = ("24h", "7d", "30d")
# The timed paths: (label, path). The dashboard page is read with a staff session, every API path with a key.
PATHS: list[tuple[str, str]] = [
    ("dashboard stats", "/api/v1/dashboard/stats"),
    ("system status (cached health)", "/api/v1/system/status"),
    *((f"dashboard page {r}", f"/?range={r}") for r in RANGES),
    *((f"summary {r}", f"/api/v1/analytics/summary?time_range={r}") for r in RANGES),
    *((f"stats {r}", f"/api/v1/analytics/stats?time_range={r}") for r in RANGES),
    *((f"timeseries {r}", f"/api/v1/analytics/timeseries?time_range={r}") for r in RANGES),
    *((f"errors {r}", f"/api/v1/analytics/errors?time_range={r}") for r in RANGES),
    *((f"insights {r}", f"/api/v1/analytics/insights?time_range={r}") for r in RANGES),
    *((f"lora-usage {r}", f"/api/v1/analytics/lora-usage?time_range={r}") for r in RANGES),
]
HEALTH = ("health (baseline)", "/api/health")
JOB_COLUMNS = (
    "id", "status", "progress", "message", "params", "created_at", "started_at", "finished_at", "kind", "mode",
    "prompt", "error", "error_code", "requested_backend", "attempts", "created_via", "updated_at",
)  # fmt: skip
LINK_COLUMNS = ("job_id", "adapter_id", "adapter_name", "sdnext_name", "weight", "position")


def prepare_environment(db: str) -> dict[str, str]:
    env = {**os.environ, "LORAFORGE_DATA_DIR": tempfile.mkdtemp(prefix="loraforge-bench-analytics-"),
           "LORAFORGE_LOG_LEVEL": "warning", "LORAFORGE_EMBEDDED_WORKER": "off",
           "DJANGO_SETTINGS_MODULE": "loraforge.settings"}  # fmt: skip
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    if db == "postgres":
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS bench_analytics")
            conn.execute("CREATE DATABASE bench_analytics")
        env["DATABASE_URL"] = PG_URL
    return env


# --- seeding ---------------------------------------------------------------------------------------------------------


def job_rows(
    count: int, now: datetime, rng: random.Random, adapters: list[tuple[Any, str, str]],
    draw: Callable[[int], list[tuple[Any, str, str]]] | None = None,
) -> tuple[list, list]:  # fmt: skip
    """``count`` generation jobs of the last 30 days and their 2-4 adapter links each; ``draw(k)`` picks a job's
    ``k`` distinct adapters (uniformly from ``adapters`` when not given)."""
    jobs, links = [], []
    span = 30 * 86400
    for _ in range(count):
        job_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        created = now - timedelta(seconds=rng.random() * span)
        started = created + timedelta(seconds=rng.uniform(0.1, 5))
        finished = started + timedelta(seconds=rng.uniform(2, 30))
        failed = rng.random() < 0.1
        code = rng.choice(list(ERRORS)) if failed else None
        error = rng.choice(ERRORS[code]) if code else None
        status = "failed" if failed else "succeeded"
        jobs.append((job_id, status, 1.0, "", "{}", created, started, finished, "generation", "sdnext", "a prompt",
                     error, code, "sdnext", 1, "generate", finished))  # fmt: skip
        k = rng.randint(2, 4)
        for position, (adapter_id, name, sdnext) in enumerate(draw(k) if draw else rng.sample(adapters, k)):
            links.append((job_id, adapter_id, name, sdnext, 1.0, position))
    return jobs, links


def _insert(connection: Any, table: str, columns: tuple[str, ...], rows: list) -> None:
    if connection.vendor == "postgresql":
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    converted = [tuple(_sqlite_value(value) for value in row) for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('%s' for _ in columns)})", converted
        )


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        return str(value.astimezone(UTC).replace(tzinfo=None))
    return value


def seed(env: dict[str, str], count: int, now: datetime) -> dict[str, Any]:
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from adapters.models import Adapter
    from analytics import db_triggers
    from analytics.rollups import rollups_rebuild
    from bench.seed import seed_adapters

    call_command("migrate", verbosity=0)
    seed_adapters(ADAPTERS)
    adapters = list(Adapter.objects.values_list("id", "name", "sdnext_name"))
    rng = random.Random(12)
    timings: dict[str, Any] = {"jobs": count}
    started = time.perf_counter()
    db_triggers.uninstall(connection)
    for offset in range(0, count, 50_000):
        jobs, links = job_rows(min(50_000, count - offset), now, rng, adapters)
        with transaction.atomic():
            _insert(connection, db_triggers.JOBS, JOB_COLUMNS, jobs)
            _insert(connection, db_triggers.LINKS, LINK_COLUMNS, links)
    timings["insert_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    rollups_rebuild()
    db_triggers.install(connection)
    timings["rebuild_s"] = round(time.perf_counter() - started, 1)
    # PostgreSQL's autovacuum keeps statistics; a LoRAForge SQLite database never gets any (nothing runs ANALYZE), and
    # SQLite's averages (no histograms) would make the status index look unselective: measured as users run it.
    if connection.vendor == "postgresql" or os.environ.get("BENCH_SQLITE_ANALYZE") == "1":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    timings["writes"] = write_costs(connection, now, rng, adapters)
    return timings


WRITES = {
    "job insert": "INSERT INTO deliveries_deliveryjob (id, status, progress, message, params, created_at, kind, mode, "
    "prompt, requested_backend, attempts, created_via, updated_at) VALUES (%s, 'pending', 0, '', '{}', %s, "
    "'generation', 'sdnext', 'p', 'sdnext', 0, 'generate', %s)",
    "3 links insert": "INSERT INTO deliveries_deliveryjobadapter (job_id, adapter_id, adapter_name, sdnext_name, "
    "weight, position) VALUES (%s, %s, 'a', 'a', 1, 0), (%s, %s, 'a', 'a', 1, 1), (%s, %s, 'a', 'a', 1, 2)",
    "to running": "UPDATE deliveries_deliveryjob SET status = 'running', started_at = %s WHERE id = %s",
    "progress": "UPDATE deliveries_deliveryjob SET progress = 0.5 WHERE id = %s",
    "to succeeded": "UPDATE deliveries_deliveryjob SET status = 'succeeded', finished_at = %s WHERE id = %s",
    "links delete": "DELETE FROM deliveries_deliveryjobadapter WHERE job_id = %s",
    "job delete": "DELETE FROM deliveries_deliveryjob WHERE id = %s",
}


def _write_params(name: str, job: Any, at: Any, adapters: list[Any]) -> list[Any]:
    if name == "job insert":
        return [job, at, at]
    if name == "3 links insert":
        return [job, adapters[0], job, adapters[1], job, adapters[2]]
    if name in ("to running", "to succeeded"):
        return [at, job]
    return [job]


def write_costs(connection: Any, now: datetime, rng: random.Random, adapters: list) -> dict[str, float]:
    """Median milliseconds of each write of a job's life (one statement each, one transaction per job, as the API
    and the worker write), with the triggers and without them; every transaction is rolled back."""
    from django.db import transaction

    from analytics import db_triggers

    sqlite = connection.vendor == "sqlite"
    costs: dict[str, float] = {}
    for label in ("with_triggers", "without_triggers"):
        if label == "without_triggers":
            db_triggers.uninstall(connection)
        times: dict[str, list[float]] = {name: [] for name in WRITES}
        for index in range(40):
            job = uuid.uuid4().hex if sqlite else uuid.uuid4()
            at = _sqlite_value(now) if sqlite else now
            linked = [_sqlite_value(a[0]) for a in rng.sample(adapters, 3)]
            with transaction.atomic(), connection.cursor() as cursor:
                for name, sql in WRITES.items():
                    started = time.perf_counter()
                    cursor.execute(sql, _write_params(name, job, at, linked))
                    if index:  # the first round compiles the triggers' plans
                        times[name].append((time.perf_counter() - started) * 1000)
                transaction.set_rollback(True)
        costs.update({f"{name} ms, {label}": round(statistics.median(v), 3) for name, v in times.items()})
    db_triggers.install(connection)
    return costs


# --- timing ----------------------------------------------------------------------------------------------------------


def timed(conn: http.client.HTTPConnection, key: str, path: str) -> float:
    """One GET: API paths with the key; the dashboard page (not under the API) with the staff session in ``key``."""
    api_key, session = key.split(" ", 1)
    headers = {"X-API-Key": api_key} if path.startswith("/api/") else {"Cookie": f"sessionid={session}"}
    started = time.perf_counter()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"{path}: HTTP {response.status}")
    return (time.perf_counter() - started) * 1000


def measure(port: int, key: str, repeat: int) -> list[dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(20):
        timed(conn, key, HEALTH[1])
    health = statistics.median(timed(conn, key, HEALTH[1]) for _ in range(max(repeat, 50)))
    rows = [{"label": HEALTH[0], "first_ms": None, "median_ms": round(health, 2), "ratio": 1.0}]
    for label, path in PATHS:
        first = timed(conn, key, path)
        median = statistics.median(timed(conn, key, path) for _ in range(repeat))
        rows.append({"label": label, "first_ms": round(first, 1), "median_ms": round(median, 2),
                     "ratio": round(median / health, 1)})  # fmt: skip
        print(f"{label:<20} first {first:8.1f} ms  median {median:8.2f} ms  x{median / health:6.1f}", flush=True)
    conn.close()
    return rows


def create_key() -> str:
    """An API key and a staff session (for the dashboard page), as ``"<key> <session key>"``."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connection

    from generation.models import GenerationBackend
    from loraforge.api_keys import api_key_create

    key = api_key_create(name="bench").plain_key
    # One backend that refuses connections: the status probes it once, then reads its cached health.
    GenerationBackend.objects.create(name="default", url="http://127.0.0.1:9")
    user = get_user_model().objects.create_user("bench", password="bench-password-0123", is_staff=True)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    connection.close()
    return f"{key} {session.session_key}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15, help="timed requests per path after the first")
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    env = prepare_environment(args.db)
    now = datetime.now(UTC)
    started = time.perf_counter()
    seeded = seed(env, args.jobs, now)
    print(f"seeded {args.jobs} jobs in {time.perf_counter() - started:.1f} s: {seeded}", flush=True)
    key = create_key()
    port = free_port()
    server = start_server(env, port)
    try:
        rows = measure(port, key, args.repeat)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"db": args.db, "seed": seeded, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
