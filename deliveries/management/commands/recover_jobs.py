"""``manage.py recover_jobs [--dry-run]``: one recovery sweep of orphaned jobs (SPEC 8, 6.2.6)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from loraforge.jobs.recovery import jobs_recover
from loraforge.management import LoraforgeCommand


class Command(LoraforgeCommand):
    help = (
        "Recover orphaned jobs once: stale running jobs are re-queued or failed, pending jobs nobody took are "
        "queued again. Prints one line per affected job."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="report what would change; write and queue nothing")

    def handle(self, *args: Any, dry_run: bool, **options: Any) -> None:
        lines = jobs_recover(dry_run=dry_run)
        for line in lines:
            self.stdout.write(line)
        if dry_run:
            self.stderr.write(f"Dry run: {len(lines)} job(s) would be recovered; nothing was changed.")
        else:
            self.stderr.write(f"{len(lines)} job(s) recovered.")
