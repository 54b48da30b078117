"""The side-by-side workload for two checkouts, interleaved on identical data: a before/after comparison that a
noisy machine cannot fake.

``bench.peer_side_by_side`` runs one server for minutes; on a shared 2-core machine two such runs minutes apart
differ by 20-40 % on their own (health itself moved from 700 to 1,100 req/s between runs of one session). Here
both checkouts serve copies of one seeded database, one after the other, in alternating order, ``--rounds``
times: each round starts a server (``make run``'s flags, SQLite, the embedded worker), measures ``GET
/api/health`` at 1 and 8 clients, creates ``--creates`` adapters at 8 clients, then runs every read phase of
``../shared/bench/peer_load.py`` at 1 and 8 clients. The report is the median over the rounds per checkout, and
after/before.

    git worktree add /tmp/before <commit>
    .venv/bin/python -m bench.peer_ab --before /tmp/before                      # page cache on
    .venv/bin/python -m bench.peer_ab --before /tmp/before --cache-entries 0    # every read uncached

Both checkouts must share the database schema (the seed is migrated by this one). Results (JSON) land in
``bench/results/``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.adapters_api import MAKE_RUN, free_port, start_server  # noqa: E402
from bench.peer_side_by_side import PEER_LOAD, environment, health_baseline, peer_load  # noqa: E402

SEED = 10_000


def serve(env: dict[str, str], checkout: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    return start_server(env, port, flags=MAKE_RUN, log=log, cwd=checkout), port


def stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    server.wait(30)


def seed(args: argparse.Namespace, work: Path, loras: Path) -> Path:
    """A data folder with ``SEED`` adapters created through the API (this checkout), shut down cleanly."""
    template = work / "template"
    env = environment(args, template, loras)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    server, port = serve(env, ROOT, work / "seed.log")
    try:
        quick = ["--create-split", f"0,{SEED}", "--requests", "10", "--max-seconds", "2"]
        peer_load(port, loras, server, work / "seed.json", *quick)
    finally:
        stop(server)
    # The seed's compose phase activated adapters; every round's compose phase activates its own 10 and checks
    # that the prompt holds exactly those.
    database = sqlite3.connect(template / "db.sqlite3")
    with database:
        database.execute("UPDATE adapters_adapter SET active = 0 WHERE active")
    database.close()
    return template


def one_round(args: argparse.Namespace, work: Path, loras: Path, template: Path, label: str, checkout: Path) -> dict:
    data = work / f"data-{label}"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(template, data)
    env = environment(args, data, loras)
    server, port = serve(env, checkout, work / f"{label}.log")
    try:
        baseline = [health_baseline(port, 1), health_baseline(port, 8)]
        extra = ["--create-split", f"0,{args.creates}", "--create-start", str(SEED), "--requests", "300"]
        result = peer_load(port, loras, server, work / f"{label}.json", *extra)
    finally:
        stop(server)
    figures: dict[str, dict[int | str, Any]] = {"health": {1: baseline[0]["median_ms"], 8: baseline[1]["rps"]}}
    for phase in result["phases"]:
        row = figures.setdefault(phase["phase"], {})
        row[phase["concurrency"]] = phase["median_ms"] if phase["concurrency"] == 1 else phase["rps"]
        row["errors"] = row.get("errors", 0) + phase["errors"]
    return figures


def median_of(rounds: list[dict], phase: str, key: int | str) -> float | None:
    values = [r[phase][key] for r in rounds if phase in r and r[phase].get(key) is not None]
    return round(statistics.median(values), 2) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="the checkout to compare this one with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--creates", type=int, default=2000, help="adapters created at 8 clients per round")
    parser.add_argument("--cache-entries", type=int, default=512, help="LORAFORGE_API_CACHE_ENTRIES (0 = off)")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    args.db, args.embeddings = "sqlite", "off"

    work = Path(tempfile.mkdtemp(prefix="loraforge-peer-ab-"))
    loras = work / "loras"
    subprocess.run(
        [sys.executable, str(PEER_LOAD), "fixtures", "--dir", str(loras), "--count", str(SEED + args.creates)],
        check=True,
    )
    template = seed(args, work, loras)
    checkouts = {"before": args.before.resolve(), "after": ROOT}
    rounds: dict[str, list[dict]] = {"before": [], "after": []}
    for number in range(args.rounds):
        order = ["before", "after"] if number % 2 == 0 else ["after", "before"]
        for label in order:
            rounds[label].append(one_round(args, work, loras, template, label, checkouts[label]))
            print(f"round {number + 1} {label}: {json.dumps(rounds[label][-1])}", flush=True)
    report(args, rounds)


def report(args: argparse.Namespace, rounds: dict[str, list[dict]]) -> None:
    print(f"\nmedians of {args.rounds} rounds, page cache entries {args.cache_entries}")
    print(f"{'phase':<22}{'c=1 ms before':>14}{'after':>8}{'c=8 rps before':>16}{'after':>8}{'after/before':>14}")
    summary = {}
    for phase in rounds["after"][0]:
        row = {label: {key: median_of(rounds[label], phase, key) for key in (1, 8)} for label in rounds}
        before, after = row["before"][8], row["after"][8]
        ratio = round(after / before, 2) if before and after else None
        summary[phase] = {**row, "ratio_c8": ratio}
        print(f"{phase:<22}{row['before'][1]!s:>14}{row['after'][1]!s:>8}{before!s:>16}{after!s:>8}{ratio!s:>14}")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    name = f"peer-ab-cache{args.cache_entries}{('-' + args.label) if args.label else ''}.json"
    (out_dir / name).write_text(json.dumps({"rounds": rounds, "summary": summary}, indent=2))
    print("results ->", out_dir / name)


if __name__ == "__main__":
    main()
