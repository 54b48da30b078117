"""``manage.py import_loras [PATH ...]`` (SPEC 8): the library scan, run inline and recorded as a job."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import IO, Any, NoReturn

from django.core.management.base import CommandParser

from adapters.scan_service import (
    ScanAlreadyRunning,
    ScanRequest,
    scan_item_line,
    scan_path_resolve,
    scan_run,
    scan_start,
    scan_summary,
)
from loraforge.jobs.reporters import ConsoleProgress
from loraforge.management import LoraforgeCommand
from loraforge.models import BackgroundJob
from loraforge.models.jobs import JobOrigin, JobStatus

EXIT_OK, EXIT_FATAL, EXIT_ITEM_ERRORS = 0, 1, 2
LISTED_COUNTERS = ("created", "updated", "changed", "moved", "duplicates", "missing", "excluded", "errors")


def worker_count(value: str) -> int:
    try:
        count = int(value, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid worker count: {value!r}") from None
    if not 1 <= count <= 32:
        raise argparse.ArgumentTypeError("--workers must be between 1 and 32")
    return count


class Command(LoraforgeCommand):
    help = "Scan the LoRA folders (or the given paths inside them) and register their files (SPEC 6.6)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", metavar="PATH", help="files or folders inside LORAFORGE_LORA_DIRS")
        parser.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
        parser.add_argument("--workers", type=worker_count, metavar="N", help="hashing threads (1..32)")
        parser.add_argument("--force-rehash", action="store_true", help="ignore the hash cache")
        parser.add_argument("--include-excluded", action="store_true", help="also scan excluded files")
        parser.add_argument("--no-embeddings", action="store_true", help="do not queue embeddings afterwards")
        parser.add_argument("--json", action="store_true", help="print the JSON report instead of the summary")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        request = ScanRequest(
            paths=self._resolve(options["paths"]),
            dry_run=options["dry_run"],
            force_rehash=options["force_rehash"],
            include_excluded=options["include_excluded"],
            workers=options["workers"],
            embeddings=not options["no_embeddings"],
        )
        try:
            job = scan_start(request=request, created_via=JobOrigin.CLI, enqueue=False)
        except ScanAlreadyRunning as exc:
            self._exit(EXIT_FATAL, f"A scan is already running (job {exc.job_id})")
        stream: IO[str] = getattr(self.stderr, "_out", sys.stderr)  # tqdm needs the raw stream, not the wrapper
        console = ConsoleProgress(stream=stream, enabled=not options["no_progress"] and stream.isatty())
        try:
            scan_run(job_id=job.pk, progress=console)
        finally:
            console.close()
        job.refresh_from_db()
        self._finish(job, as_json=options["json"])

    def _resolve(self, values: list[str]) -> tuple[str, ...] | None:
        resolved: list[str] = []
        for value in values:
            path = scan_path_resolve(value, base=Path.cwd())
            if path is None:
                self._exit(EXIT_FATAL, f"{value} is not inside LORAFORGE_LORA_DIRS")
            if str(path) not in resolved:
                resolved.append(str(path))
        return tuple(resolved) or None

    def _finish(self, job: BackgroundJob, *, as_json: bool) -> None:
        report = job.result
        if report is not None:
            self._print_report(report, as_json=as_json)
        if job.status == JobStatus.FAILED:
            self._exit(EXIT_FATAL, job.error or "The scan failed")
        if job.status != JobStatus.SUCCEEDED:
            self._exit(EXIT_FATAL, f"Scan cancelled (job {job.pk})")
        if report is not None and report["dry_run"] and not as_json:
            self.stderr.write("Dry run: nothing was written.")
        if report is not None and report["errors"] > 0:
            raise SystemExit(EXIT_ITEM_ERRORS)

    def _print_report(self, report: dict[str, Any], *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(report, indent=2, ensure_ascii=False))
            return
        self.stdout.write(scan_summary(report))
        for item in report["items"]:
            self.stdout.write(scan_item_line(item))
        unlisted = sum(report[name] for name in LISTED_COUNTERS) - len(report["items"])
        if report.get("items_truncated") and unlisted > 0:
            self.stdout.write(f"… and {unlisted} more not listed")

    def _exit(self, code: int, message: str) -> NoReturn:
        self.stderr.write(message)
        raise SystemExit(code)
