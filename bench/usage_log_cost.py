"""What the co-usage triggers cost one job at a time (``recommendations/usage_triggers.py``): a job created running
with 3 links, a progress update, and its success, each timed in process, with the triggers that log the changed job
(``UsageChange``), with the triggers that only bump the version (as before the log), and with none. The three
variants alternate every 25 jobs on the same fresh database, so a drift of the machine is shared.

    .venv/bin/python -m bench.usage_log_cost --db sqlite
    .venv/bin/python -m bench.usage_log_cost --db postgres
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.adapters_api import prepare_environment  # noqa: E402

VARIANTS = ("logged", "version only", "none")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--jobs", type=int, default=300, help="jobs per variant")
    args = parser.parse_args()
    args.reuse = None
    os.environ.update(prepare_environment(args, database="loraforge_bench_triggers"))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from adapters.models import Adapter
    from bench.seed import running_job, seed_adapters
    from deliveries.models import DeliveryJob
    from recommendations import usage_triggers

    call_command("migrate", verbosity=0)
    seed_adapters(50)
    adapters = list(Adapter.objects.all()[:50])
    samples: dict[str, dict[str, list[float]]] = {v: {"create": [], "progress": [], "success": []} for v in VARIANTS}
    for block in range(args.jobs // 25):
        for variant in VARIANTS:
            if variant == "none":
                usage_triggers.uninstall(connection)
            else:
                usage_triggers.reinstall(connection, logged=variant == "logged")
            for n in range(25):
                chosen = adapters[(block * 25 + n) % 47 : (block * 25 + n) % 47 + 3]
                started = time.perf_counter()
                job = running_job(chosen)
                created = time.perf_counter()
                DeliveryJob.objects.filter(pk=job.pk).update(progress=0.5, message="step 10/20")
                progressed = time.perf_counter()
                DeliveryJob.objects.filter(pk=job.pk).update(status="succeeded", finished_at=timezone.now())
                done = time.perf_counter()
                samples[variant]["create"].append((created - started) * 1000)
                samples[variant]["progress"].append((progressed - created) * 1000)
                samples[variant]["success"].append((done - progressed) * 1000)
    usage_triggers.reinstall(connection)
    print(f"{args.db}, {args.jobs} jobs per variant, median ms")
    print(f"{'variant':<14} {'create + 3 links':>17} {'progress':>9} {'success':>8}")
    for variant in VARIANTS:
        row = samples[variant]
        print(
            f"{variant:<14} {statistics.median(row['create']):17.3f} {statistics.median(row['progress']):9.3f} "
            f"{statistics.median(row['success']):8.3f}"
        )


if __name__ == "__main__":
    main()
