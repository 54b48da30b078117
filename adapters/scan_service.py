"""Library scans as BackgroundJobs (SPEC 5.2, 6.6.8, 8): start one at a time, run, summarise.

``POST /adapters/scan``, the start-up scan and ``manage.py import_loras`` all start a scan with
``scan_start``; the Celery task ``adapters.scan_library`` and the command both run it with ``scan_run``.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection, transaction

from adapters.scanner import engine
from adapters.scanner.paths import has_invalid_characters, lora_roots, path_exists, root_of
from adapters.scanner.types import ScanCancelled, ScanOptions, ScanProgress, ScanReport
from loraforge.errors import Conflict
from loraforge.jobs.background import (
    background_job_create,
    background_job_take,
    job_enqueue,
    job_fail,
    job_keep_result,
    job_succeed,
)
from loraforge.jobs.deadline import TIME_LIMIT_EXCEEDED
from loraforge.jobs.enqueue import QueueUnavailable
from loraforge.jobs.reporters import JobProgressReporter, ProgressTee
from loraforge.models import BackgroundJob
from loraforge.models.jobs import ACTIVE_STATUSES, BackgroundJobKind, JobOrigin

logger = logging.getLogger("loraforge.adapters")

SCAN_RUNNING = "A library scan is already running"
PATH_OUTSIDE = "path must be inside a configured LoRA folder"
PATH_INVALID = "path contains invalid characters"
SUMMARY_COUNTERS = (
    "created", "updated", "changed", "unchanged", "moved", "duplicates", "missing", "excluded", "errors",
)  # fmt: skip
_SCAN_LOCK_KEY = 0x4C46_5343  # PostgreSQL advisory lock serialising scan starts ("LFSC")


class ScanAlreadyRunning(Conflict):
    def __init__(self, job_id: uuid.UUID | str) -> None:
        super().__init__(SCAN_RUNNING, job_id=str(job_id))
        self.job_id = str(job_id)


@dataclass(frozen=True)
class ScanRequest:
    paths: tuple[str, ...] | None = None  # absolute, inside the LoRA folders; None = every folder
    dry_run: bool = False
    force_rehash: bool = False
    include_excluded: bool = False
    workers: int | None = None  # None = LORAFORGE_SCAN_WORKERS
    # Embeddings follow the engine's ``adapters_imported`` signal; False (``--no-embeddings``) stops the announcement.
    embeddings: bool = True

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "paths": list(self.paths) if self.paths is not None else None,
            "dry_run": self.dry_run,
            "force_rehash": self.force_rehash,
            "include_excluded": self.include_excluded,
        }
        if self.workers is not None:
            params["workers"] = self.workers
        if not self.embeddings:
            params["embeddings"] = False
        return params


def scan_options(params: Mapping[str, Any]) -> ScanOptions:
    paths = params.get("paths")
    return ScanOptions(
        paths=tuple(Path(path) for path in paths) if paths else None,
        dry_run=bool(params.get("dry_run", False)),
        force_rehash=bool(params.get("force_rehash", False)),
        include_excluded=bool(params.get("include_excluded", False)),
        workers=params.get("workers"),
        announce=bool(params.get("embeddings", True)),
    )


# --- paths ----------------------------------------------------------------------------------------


def scan_path_resolve(value: str, *, base: Path | None = None) -> Path | None:
    """The normalised absolute path of a scan path inside a LoRA folder, else None.

    A relative path is taken against ``base`` (the command's working directory) or, without one, tried
    against each LoRA folder in order (the first that exists wins, else the first inside).
    """
    if not value or has_invalid_characters(value):
        return None
    if os.path.isabs(value):
        candidates = [Path(value)]
    else:
        candidates = [base / value] if base is not None else [root / value for root in lora_roots()]
    inside = [Path(os.path.normpath(candidate)) for candidate in candidates if root_of(candidate) is not None]
    existing = [candidate for candidate in inside if path_exists(candidate)]
    chosen = existing or inside
    return chosen[0] if chosen else None


def scan_paths_errors(values: Sequence[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Resolved paths (duplicates dropped) and errors keyed by list index (``paths.N`` in the API)."""
    resolved: list[str] = []
    errors: dict[str, list[str]] = {}
    for index, value in enumerate(values):
        path = scan_path_resolve(value)
        if path is None:
            errors[str(index)] = [PATH_INVALID if has_invalid_characters(value) else PATH_OUTSIDE]
        elif str(path) not in resolved:
            resolved.append(str(path))
    return resolved, errors


# --- start ----------------------------------------------------------------------------------------


def active_scan() -> BackgroundJob | None:
    return (
        BackgroundJob.objects.filter(kind=BackgroundJobKind.SCAN, status__in=ACTIVE_STATUSES)
        .order_by("created_at")
        .first()
    )


def _serialise_scan_starts() -> None:
    """Inside the transaction: no other scan start may decide at the same time.

    SQLite transactions here begin IMMEDIATE (one writer at a time); PostgreSQL takes an advisory lock.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SCAN_LOCK_KEY])


def scan_start(*, request: ScanRequest, created_via: str, enqueue: bool = True) -> BackgroundJob:
    """Create the scan job (409 while another one is pending or running) and queue it on commit.

    ``enqueue=False`` (the command) leaves the job ``pending`` for ``scan_run`` inline.
    """
    queued: list[bool] = []
    with transaction.atomic():
        _serialise_scan_starts()
        running = active_scan()
        if running is not None:
            raise ScanAlreadyRunning(running.pk)
        job = background_job_create(kind=BackgroundJobKind.SCAN, params=request.params(), created_via=created_via)
        if enqueue:
            transaction.on_commit(lambda: queued.append(job_enqueue(job)))
    if queued == [False]:
        raise QueueUnavailable(job.pk)
    return job


def scan_start_on_startup() -> BackgroundJob | None:
    """``LORAFORGE_SCAN_ON_STARTUP``: queue one scan unless one is already pending or running."""
    try:
        job = scan_start(request=ScanRequest(), created_via=JobOrigin.SCHEDULE)
    except ScanAlreadyRunning as exc:
        logger.info("Start-up scan skipped: scan job %s is already pending or running", exc.job_id)
        return None
    except QueueUnavailable as exc:
        logger.warning("Start-up scan job %s could not be queued: task queue unavailable", exc.job_id)
        return None
    logger.info("Start-up scan queued (job %s)", job.pk)
    return job


# --- run ------------------------------------------------------------------------------------------


def scan_run(*, job_id: uuid.UUID | str, progress: ScanProgress | None = None) -> BackgroundJob | None:
    """Run a pending scan job to its end; idempotent (a job already taken or finished is left alone)."""
    job, started = background_job_take(job_id=job_id, kind=BackgroundJobKind.SCAN)
    if job is None or not started:
        return job
    report = _scan(job, progress)
    if report is not None:
        _finish(job, report)
    return job


def _scan(job: BackgroundJob, progress: ScanProgress | None) -> ScanReport | None:
    with JobProgressReporter(job) as reporter:
        try:
            return engine.library_scan(options=scan_options(job.params), progress=ProgressTee(reporter, progress))
        except ScanCancelled as exc:
            job_keep_result(job, exc.report.to_dict())
        except SoftTimeLimitExceeded:
            job_fail(job, TIME_LIMIT_EXCEEDED)
        except Exception as exc:
            logger.exception("Scan job %s failed", job.pk)
            job_fail(job, f"Scan failed: {exc}")
    return None


def _finish(job: BackgroundJob, report: ScanReport) -> None:
    result = report.to_dict()
    if not job_succeed(job, result, message=scan_summary(result)):
        job_keep_result(job, result)  # cancelled after the scan's last check: keep the full report


# --- summary (SPEC 8) -----------------------------------------------------------------------------


def format_bytes(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    value = float(count)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def scan_summary(report: Mapping[str, Any]) -> str:
    """``Scanned 120 files in 1 folder: 5 created, …, 0 errors; hashed 5 files (1.2 GiB) in 4.1 s``."""
    counts = ", ".join(f"{report[name]} {name}" for name in SUMMARY_COUNTERS)
    return (
        f"Scanned {_plural(report['files_seen'], 'file')} in {_plural(len(report['roots']), 'folder')}: {counts}; "
        f"hashed {_plural(report['hashed'], 'file')} ({format_bytes(report['bytes_hashed'])}) "
        f"in {report['duration_seconds']:.1f} s"
    )


def scan_item_line(item: Mapping[str, Any]) -> str:
    line = f"{item['status']}: {item['path']}"
    return f"{line} ({item['detail']})" if item.get("detail") else line
