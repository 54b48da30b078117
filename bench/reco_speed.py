"""Recommendation speed: ``similar``, ``for-prompt`` (prompt encoding included) and ``by-trigger`` through the real
server, with ``GET /api/health`` on the same server as the in-run baseline; embedding throughput on CPU in
batches of 32; lexical index build time and memory; the web process's RSS before and after the model loads.

    .venv/bin/python -m bench.reco_speed --count 10000
    .venv/bin/python -m bench.reco_speed --count 100000 --embed-sample 2000

Adapters are bulk-inserted (``bench.seed``). Vectors: every adapter is embedded for real unless
``--embed-sample N`` is given; then N adapters are embedded (the throughput figure) and the rest get random unit
vectors stored with their current text hash, which costs a request exactly what real vectors cost.

``--jobs N`` adds a generation history: N jobs of the last 30 days (90 % succeeded), each with 2-4 adapters drawn
by a long-tailed popularity (weight ``1 / rank**0.8``: a few adapters are in thousands of jobs, most in a few), so
``similar`` and ``works-well-with`` pay their co-usage as a library in use does. The 20 most used adapters are then
asked as targets too (``similar_popular_*``, ``works_well_with_popular_median_ms``), and the 5 most used as
for-prompt's active adapters (``for_prompt_popular_active_ms``); the ``for-prompt, 5 active`` scenario activates 5 of
the sampled adapters.
Last, ``similar_while_generating_*`` asks them again while jobs keep succeeding (one before each ask).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.adapters_api import (  # noqa: E402
    Scenario,
    free_port,
    prepare_environment,
    run_clients,
    start_server,
)

TRIGGER_PATH = "/api/v1/recommendations/by-trigger?trigger_query="
PROMPT = "portrait of a knight in glowing armor at sunset, cinematic lighting, detailed"


def seed(
    env: dict[str, str], count: int, embed_sample: int | None, *, jobs: int = 0, fresh: bool = True
) -> dict[str, Any]:
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from adapters.models import Adapter
    from bench.seed import seed_adapters
    from loraforge.api_keys import api_key_create

    figures: dict[str, Any] = {}
    if fresh:
        started = time.perf_counter()
        seed_adapters(count)
        print(f"seeded {count} adapters in {time.perf_counter() - started:.1f} s", flush=True)
    ids = [str(pk) for pk in Adapter.objects.order_by("pk").values_list("pk", flat=True)]
    if fresh:
        figures |= embed(ids, embed_sample)
        if jobs:
            figures |= seed_jobs(jobs, ids)
    figures |= index_figures()
    rng = np.random.default_rng(3)
    sample = [ids[int(i)] for i in rng.choice(len(ids), size=min(200, len(ids)), replace=False)]
    asked = set(sample)
    later = [ids[int(i)] for i in rng.permutation(len(ids)) if ids[int(i)] not in asked][:100]
    words = list(Adapter.objects.filter(pk__in=sample[:50]).values_list("trained_words", flat=True))
    from django.db import connection

    key = api_key_create(name="bench").plain_key
    popular = most_used(20)
    connection.close()
    triggers = [w[0] for w in words if w]
    return figures | {"key": key, "ids": sample, "later": later, "popular": popular, "triggers": triggers}


def seed_jobs(count: int, ids: list[str]) -> dict[str, Any]:
    """``count`` generation jobs with long-tailed adapter popularity, written as ``bench.analytics`` writes them
    (COPY on PostgreSQL; the rollups rebuilt once and their triggers installed again)."""
    import random

    from django.db import connection, transaction
    from django.utils import timezone

    from adapters.models import Adapter
    from analytics import db_triggers
    from analytics.rollups import rollups_rebuild
    from bench.analytics import JOB_COLUMNS, LINK_COLUMNS, _insert, job_rows
    from recommendations.usage_triggers import usage_suspended

    adapters = list(Adapter.objects.order_by("pk").values_list("id", "name", "sdnext_name"))
    rng = random.Random(3)
    rng.shuffle(adapters)  # popularity does not follow the ids
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(adapters))]

    def draw(k: int) -> list[Any]:
        chosen: list[Any] = []
        while len(chosen) < k:
            [pick] = rng.choices(adapters, weights=weights)
            if pick not in chosen:
                chosen.append(pick)
        return chosen

    started = time.perf_counter()
    db_triggers.uninstall(connection)
    for offset in range(0, count, 50_000):
        jobs, links = job_rows(min(50_000, count - offset), timezone.now(), rng, adapters, draw)
        with transaction.atomic(), usage_suspended():  # as a restore: no job logged, the version bumped once
            _insert(connection, db_triggers.JOBS, JOB_COLUMNS, jobs)
            _insert(connection, db_triggers.LINKS, LINK_COLUMNS, links)
    rollups_rebuild()
    db_triggers.install(connection)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    seconds = time.perf_counter() - started
    print(f"seeded {count} generation jobs in {seconds:.1f} s", flush=True)
    return {"jobs": count, "jobs_seed_s": seconds}


def most_used(limit: int) -> list[str]:
    """The adapters in the most succeeded generation jobs (none without a history)."""
    from django.db.models import Count

    from deliveries.models import DeliveryJobAdapter

    rows = (
        DeliveryJobAdapter.objects.filter(job__kind="generation", job__status="succeeded", adapter__isnull=False)
        .values("adapter_id")
        .annotate(jobs=Count("job_id"))
        .order_by("-jobs")[:limit]
    )
    return [str(row["adapter_id"]) for row in rows]


def embed(ids: list[str], sample: int | None) -> dict[str, Any]:
    from recommendations.services.embeddings import embeddings_compute

    real = ids if sample is None else ids[:sample]
    started = time.perf_counter()
    report = embeddings_compute(adapter_ids=real, batch_size=32)
    seconds = time.perf_counter() - started
    print(f"embedded {report.processed_count} adapters in {seconds:.1f} s ({report.device})", flush=True)
    if sample is not None:
        synthetic_vectors(ids[sample:])
    return {
        "embedded": report.processed_count,
        "embed_seconds": seconds,
        "embed_per_s": report.processed_count / seconds,
    }


def synthetic_vectors(ids: list[str]) -> None:
    from django.utils import timezone

    from adapters.models import Adapter
    from recommendations.documents import semantic_text, text_sha256
    from recommendations.encoder import model_name
    from recommendations.models import AdapterEmbedding
    from recommendations.vectors import vector_to_bytes

    rng = np.random.default_rng(5)
    now = timezone.now()
    for start in range(0, len(ids), 5000):
        batch = Adapter.objects.filter(pk__in=ids[start : start + 5000])
        rows = []
        for adapter in batch:
            vector = rng.standard_normal(384).astype(np.float32)
            vector /= np.linalg.norm(vector)
            rows.append(
                AdapterEmbedding(
                    adapter=adapter, model_name=model_name(), dim=384, vector=vector_to_bytes(vector),
                    text_sha256=text_sha256(semantic_text(adapter)), computed_at=now,
                )
            )  # fmt: skip
        AdapterEmbedding.objects.bulk_create(rows)
    print(f"stored {len(ids)} synthetic vectors", flush=True)


def index_figures() -> dict[str, Any]:
    from recommendations.index import index_current

    started = time.perf_counter()
    index = index_current(force=True, semantic=False)
    build = time.perf_counter() - started
    lexical_bytes = index.memory_bytes
    started = time.perf_counter()
    index = index_current(semantic=True)
    load = time.perf_counter() - started
    semantic_bytes = index.semantic.memory_bytes if index.semantic else 0
    print(
        f"lexical index: {build:.2f} s, {lexical_bytes / 2**20:.1f} MiB; "
        f"vectors: {load:.2f} s, {semantic_bytes / 2**20:.1f} MiB"
    )
    return {"index_build_s": build, "index_mib": lexical_bytes / 2**20, "vectors_load_s": load,
            "vectors_mib": semantic_bytes / 2**20}  # fmt: skip


def rss_mib(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / 2**20


def timed(port: int, key: str, method: str, path: str, body: bytes | None = None) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    started = time.perf_counter()
    conn.request(method, path, body=body, headers={"X-API-Key": key, "Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"{method} {path}: HTTP {response.status}")
    return (time.perf_counter() - started) * 1000


def after_writes(port: int, key: str, ids: list[str]) -> dict[str, float]:
    """What the first similar costs after catalogue writes (the index follows them instead of a fit): a toggle, a
    new description of known words, and one with a word no adapter had (a fit starts in the background; the
    request does not wait for it). Each is the median of 5 write-then-similar pairs on different adapters."""
    texts = {
        "toggle": None,
        "text": "A watercolor portrait in soft pastel light.",
        "new_word": "A zeppelin-shaped quokka in soft pastel light.",
    }
    figures: dict[str, float] = {}
    for name, text in texts.items():
        samples = []
        for n, target in enumerate(ids[10:15]):
            path = f"/api/v1/adapters/{target}"
            body = {"active": n % 2 == 0} if text is None else {"description": f"{text} {n}"}
            timed(port, key, "PATCH", path, json.dumps(body).encode())
            samples.append(timed(port, key, "GET", f"/api/v1/recommendations/similar/{ids[0]}"))
        figures[f"similar_after_{name}_ms"] = float(np.median(samples))
    return figures


def while_generating(port: int, key: str, popular: list[str], asks: int = 40) -> dict[str, float]:
    """``similar`` of the most used adapters while jobs keep succeeding: before each ask, one job with three of them
    succeeds as a worker writes it (created running with its links, then marked succeeded), so every ask finds the
    co-usage history changed. Also what that write costs (the triggers' part of it included)."""
    from django.db import connection
    from django.utils import timezone

    from adapters.models import Adapter
    from bench.seed import running_job
    from deliveries.models import DeliveryJob

    adapters = {str(row.pk): row for row in Adapter.objects.filter(pk__in=popular)}
    timed(port, key, "GET", f"/api/v1/recommendations/similar/{popular[0]}")
    time.sleep(5)  # a history load the asks before started has finished
    writes, samples = [], []
    for n in range(asks):
        chosen = [adapters[popular[(n + step) % len(popular)]] for step in (0, 1, 7)]
        started = time.perf_counter()
        job = running_job(chosen)
        DeliveryJob.objects.filter(pk=job.pk).update(status="succeeded", progress=1.0, finished_at=timezone.now())
        writes.append((time.perf_counter() - started) * 1000)
        samples.append(timed(port, key, "GET", f"/api/v1/recommendations/similar/{chosen[0].pk}"))
    connection.close()
    return {
        "similar_while_generating_median_ms": float(np.median(samples)),
        "similar_while_generating_p95_ms": float(np.percentile(samples, 95)),
        "job_write_median_ms": float(np.median(writes)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--embed-sample", type=int, default=None)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per scenario")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--jobs", type=int, default=0, help="generation jobs to seed (a history for co-usage)")
    parser.add_argument("--reuse", type=Path, default=None, help="the data folder of an earlier run (no seeding)")
    args = parser.parse_args()
    env = prepare_environment(args)
    figures = seed(env, args.count, args.embed_sample, jobs=args.jobs, fresh=args.reuse is None)
    key, port = figures.pop("key"), free_port()
    ids, triggers, popular = figures.pop("ids"), figures.pop("triggers"), figures.pop("popular")
    later = figures.pop("later")
    server = start_server(env, port)
    try:
        figures["rss_idle_mib"] = rss_mib(server.pid)
        figures["first_similar_ms"] = timed(port, key, "GET", f"/api/v1/recommendations/similar/{ids[0]}")
        figures["rss_index_mib"] = rss_mib(server.pid)
        body = json.dumps({"prompt": PROMPT}).encode()
        figures["first_for_prompt_ms"] = timed(port, key, "POST", "/api/v1/recommendations/for-prompt", body)
        figures["rss_model_mib"] = rss_mib(server.pid)
        # Every other target asked once: no lexical row of theirs is kept yet (what any first ask costs). The
        # scenario below then cycles over the same targets: at 10,000 adapters they are all kept (asked again), at
        # 100,000 the index keeps fewer rows than there are targets, so they are computed again.
        first_asks = [timed(port, key, "GET", f"/api/v1/recommendations/similar/{pk}") for pk in ids[1:]]
        figures["similar_first_ask_median_ms"] = float(np.median(first_asks))
        figures["similar_first_ask_p95_ms"] = float(np.percentile(first_asks, 95))
        active_body = json.dumps({"prompt": PROMPT, "active_loras": ids[:5]}).encode()
        if popular:  # the most used adapters: the most co-usage to count
            asks = [timed(port, key, "GET", f"/api/v1/recommendations/similar/{pk}") for pk in popular]
            figures["similar_popular_median_ms"] = float(np.median(asks))
            figures["similar_popular_max_ms"] = float(np.max(asks))
            asks = [timed(port, key, "GET", f"/api/v1/recommendations/works-well-with/{pk}") for pk in popular]
            figures["works_well_with_popular_median_ms"] = float(np.median(asks))
            busy = json.dumps({"prompt": PROMPT, "active_loras": popular[:5]}).encode()
            asks = [timed(port, key, "POST", "/api/v1/recommendations/for-prompt", busy) for _ in range(20)]
            figures["for_prompt_popular_active_ms"] = float(np.median(asks))
        scenarios = [
            Scenario("health (baseline)", "GET", ["/api/health"]),
            Scenario("similar, asked again", "GET", [f"/api/v1/recommendations/similar/{pk}" for pk in ids]),
            Scenario("for-prompt", "POST", ["/api/v1/recommendations/for-prompt"], body),
            Scenario("by-trigger", "GET", [f"{TRIGGER_PATH}{t.replace(' ', '+')}" for t in triggers]),
            Scenario("works-well-with", "GET", [f"/api/v1/recommendations/works-well-with/{pk}" for pk in ids]),
            Scenario("for-prompt, 5 active", "POST", ["/api/v1/recommendations/for-prompt"], active_body),
        ]  # fmt: skip
        rows = []
        for scenario in scenarios:
            row = run_clients([port], key, scenario, 1, args.duration) | {"scenario": scenario.name}
            rows.append(row)
        figures["rss_after_mib"] = rss_mib(server.pid)
        # First asks again, of 100 targets never asked, now that whatever the process loads once (the co-usage
        # history among it) is loaded: what a target's first ask costs in a process that has been serving a while.
        later_asks = [timed(port, key, "GET", f"/api/v1/recommendations/similar/{pk}") for pk in later]
        figures["similar_first_ask_later_median_ms"] = float(np.median(later_asks))
        figures["similar_first_ask_later_p95_ms"] = float(np.percentile(later_asks, 95))
        figures |= after_writes(port, key, ids)
        if popular:
            figures |= while_generating(port, key, popular)
    finally:
        server.terminate()
        server.wait(timeout=30)
    baseline = float(rows[0]["median_ms"])
    print(f"\n{args.count} adapters, {args.db}, c=1, {args.duration:g} s per scenario")
    for row in rows:
        print(
            f"{row['scenario']:<20} median {row['median_ms']:8.2f} ms  p95 {row['p95_ms']:8.2f} ms  "
            f"x{float(row['median_ms']) / baseline:6.1f} health  errors {row['errors']}"
        )
    for name, value in figures.items():
        print(f"{name:<22} {value:10.2f}")
    if args.output:
        args.output.write_text(json.dumps({"rows": rows, "figures": figures}, indent=1))


if __name__ == "__main__":
    main()
