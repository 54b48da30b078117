"""``manage.py recompute_embeddings`` (SPEC 8): the embeddings job, run inline and recorded as a job."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import IO, Any, NoReturn

from django.core.management.base import CommandParser

from loraforge.jobs.reporters import ConsoleItemsProgress
from loraforge.management import LoraforgeCommand
from loraforge.models import BackgroundJob
from loraforge.models.jobs import JobOrigin, JobStatus
from recommendations.serializers import BATCH_SIZE_MAX
from recommendations.services.embeddings import (
    DEFAULT_BATCH_SIZE,
    embeddings_job_run,
    embeddings_job_start,
    unknown_adapter_ids,
)

EXIT_OK, EXIT_FATAL, EXIT_ITEM_ERRORS = 0, 1, 2


def batch_size(value: str) -> int:
    try:
        size = int(value, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid batch size: {value!r}") from None
    if not 1 <= size <= BATCH_SIZE_MAX:
        raise argparse.ArgumentTypeError(f"--batch-size must be between 1 and {BATCH_SIZE_MAX}")
    return size


class Command(LoraforgeCommand):
    help = "Compute the sentence embeddings of adapters whose vector is missing or stale (SPEC 6.7.1)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="every adapter, also those with current vectors")
        parser.add_argument("--force", action="store_true", help="recompute current vectors too")
        parser.add_argument(
            "--adapter", action="append", default=[], metavar="ID", help="only this adapter (repeatable)"
        )
        parser.add_argument(
            "--batch-size", type=batch_size, default=DEFAULT_BATCH_SIZE, metavar="N",
            help=f"adapters per batch (1..{BATCH_SIZE_MAX}, default {DEFAULT_BATCH_SIZE})",
        )  # fmt: skip
        parser.add_argument("--json", action="store_true", help="print the JSON report instead of the summary")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        job, _count = embeddings_job_start(
            adapter_ids=self._adapter_ids(options["adapter"]), force=options["force"], compute_all=options["all"],
            batch_size=options["batch_size"], created_via=JobOrigin.CLI, enqueue=False,
        )  # fmt: skip
        stream: IO[str] = getattr(self.stderr, "_out", sys.stderr)  # tqdm needs the raw stream, not the wrapper
        console = ConsoleItemsProgress(
            stream=stream, enabled=not options["no_progress"] and stream.isatty(), unit="adapter"
        )
        try:
            embeddings_job_run(job_id=job.pk, progress=console)
        finally:
            console.close()
        job.refresh_from_db()
        self._finish(job, as_json=options["json"])

    def _adapter_ids(self, values: list[str]) -> list[str]:
        """The ``--adapter`` ids, normalised and without repeats; any that names no adapter is fatal."""
        ids: list[str] = []
        malformed: list[str] = []
        for value in values:
            try:
                ids.append(str(uuid.UUID(value.strip())))
            except ValueError:
                malformed.append(value)
        ids = list(dict.fromkeys(ids))
        unknown = malformed + unknown_adapter_ids(ids)
        if unknown:
            self._exit(EXIT_FATAL, f"Unknown adapter ids: {', '.join(unknown)}")
        return ids

    def _finish(self, job: BackgroundJob, *, as_json: bool) -> None:
        result = job.result
        if job.status == JobStatus.SUCCEEDED and result is not None:
            self.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) if as_json else job.message)
        if job.status == JobStatus.FAILED:
            self._exit(EXIT_FATAL, job.error or "Computing embeddings failed")
        if job.status != JobStatus.SUCCEEDED:
            self._exit(EXIT_FATAL, f"Embeddings cancelled (job {job.pk})")
        if result is not None and result["error_count"] > 0:
            raise SystemExit(EXIT_ITEM_ERRORS)

    def _exit(self, code: int, message: str) -> NoReturn:
        self.stderr.write(message)
        raise SystemExit(code)
