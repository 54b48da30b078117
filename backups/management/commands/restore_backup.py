"""``manage.py restore_backup FILE|BACKUP_ID`` (SPEC 8): validate and apply a backup (or any archive file) inline,
recorded as a restore job."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from django.core.management.base import CommandParser

from backups.management import EXIT_FATAL, NOT_FOUND, backup_or_file, console_progress
from backups.services.restore import RESTORE_MODES, backup_restore_start, file_restore_start, restore_run
from loraforge.errors import ApiProblem
from loraforge.management import LoraforgeCommand
from loraforge.models import BackgroundJob
from loraforge.models.jobs import JobOrigin, JobStatus

REFUSE_REPLACE = "Refusing to replace without --yes"


class Command(LoraforgeCommand):
    help = "Restore a backup (its id) or an archive file (SPEC 6.10): merge (default), replace or dry-run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", metavar="FILE|BACKUP_ID")
        parser.add_argument("--mode", choices=RESTORE_MODES, default="merge")
        parser.add_argument("--yes", action="store_true", help="replace without asking")
        parser.add_argument("--json", action="store_true", help="print the JSON result instead of the summary")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        source = backup_or_file(options["source"])
        if source is None:
            self._exit(NOT_FOUND.format(value=options["source"]))
        if options["mode"] == "replace" and not options["yes"]:
            self._confirm(source)
        try:
            if isinstance(source, Path):
                job = file_restore_start(source, mode=options["mode"], created_via=JobOrigin.CLI)
            else:
                job = backup_restore_start(source, mode=options["mode"], created_via=JobOrigin.CLI, enqueue=False)
        except ApiProblem as exc:
            self._exit(str(exc.detail))
        console = console_progress(self, no_progress=options["no_progress"])
        try:
            restore_run(job.pk, progress=console)
        finally:
            console.close()
        job.refresh_from_db()
        self._finish(job, as_json=options["json"])

    def _confirm(self, source: Any) -> None:
        """``replace`` overwrites curation: asked on a terminal, refused without ``--yes`` elsewhere."""
        if not sys.stdin.isatty():
            self._exit(REFUSE_REPLACE)
        answer = input(f"Replace matching rows with the contents of {source}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            self._exit(REFUSE_REPLACE)

    def _finish(self, job: BackgroundJob, *, as_json: bool) -> None:
        if job.status == JobStatus.SUCCEEDED:
            self.stdout.write(json.dumps(job.result, indent=2, ensure_ascii=False) if as_json else job.message)
            return
        if as_json and job.result:
            self.stdout.write(json.dumps(job.result, indent=2, ensure_ascii=False))
        self._exit(job.error or f"Restore ended {job.status} (job {job.pk})")

    def _exit(self, message: str) -> NoReturn:
        self.stderr.write(message)
        raise SystemExit(EXIT_FATAL)
