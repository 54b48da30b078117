"""Import of uploaded archives (SPEC 5.9, 6.10.2-6.10.3): one file at a time, each validated completely before
anything is written, each independent of the others, the whole request recorded as a ``BackgroundJob`` (kind
``import``) with its ``job_progress`` events.

``POST /import`` calls ``import_run``; a restore (``backups.services.backups``) calls ``archive_import_file``.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backups.archive.format import ArchiveError
from backups.archive.progress import ArchiveProgress
from backups.archive.validate import archive_validate
from backups.services.exclusive import exclusive_job_create
from backups.uploads import stale_uploads_remove
from loraforge.jobs.background import job_fail, job_publish, job_start, job_succeed
from loraforge.jobs.reporters import JobProgressReporter
from loraforge.models import BackgroundJob
from loraforge.models.jobs import BackgroundJobKind

logger = logging.getLogger("loraforge.backups")

MODES = ("merge", "replace", "dry-run")
MODE_ALIASES = {"merge": "merge", "replace": "replace", "dry-run": "dry-run", "dryrun": "dry-run", "preview": "dry-run"}
DRY_RUN = "dry-run"
STATUS_ERROR = "error"
BACKING_UP = "Creating a metadata-only backup before the import"
BACKUP_BEFORE_FAILED = "Backup before import failed: {error}"
UNEXPECTED = "Unexpected error while importing this file (reference {reference})"


@dataclass(frozen=True)
class ImportConfig:
    """The ``config`` of ``POST /import`` (validated): ``mode`` already normalised (aliases resolved)."""

    mode: str = "merge"
    backup_before: bool = False

    def params(self) -> dict[str, Any]:
        return {"mode": self.mode, "backup_before": self.backup_before}


def import_mode(value: str) -> str:
    """``merge``/``replace``/``dry-run``, with the aliases ``dryrun`` and ``preview``; ``ValueError`` otherwise."""
    try:
        return MODE_ALIASES[value]
    except KeyError:
        raise ValueError(value) from None


def error_result(display_name: str, message: str) -> dict[str, Any]:
    return {"file": display_name, "status": STATUS_ERROR, "detail": message, "errors": [message]}


# --- one file -----------------------------------------------------------------------------------------


def archive_import_file(
    path: Path,
    *,
    display_name: str,
    mode: str,
    job: BackgroundJob | None = None,
    progress: ArchiveProgress | None = None,
    max_members: int | None = None,
) -> dict[str, Any]:
    """Validate ``path`` (SPEC 6.10.2) and apply it (6.10.3); the per-file result of SPEC 5.9. ``max_members``:
    see ``archive_validate``.

    A validation failure, or a record refused by the apply before it writes, is the result ``status: "error"``
    with the SPEC's message; nothing is written then. Other exceptions propagate (the caller decides)."""
    try:
        archive = archive_validate(path, progress=progress, max_members=max_members)
        from backups.archive.apply import archive_apply  # the apply phase (SPEC 6.10.3), in its own module

        job_id = str(job.pk) if job is not None else uuid.uuid4().hex
        result = archive_apply(archive, mode=mode, job_id=job_id, progress=progress)
    except ArchiveError as exc:
        return error_result(display_name, str(exc))
    return {"file": display_name, **result}


# --- the request --------------------------------------------------------------------------------------


class _RunProgress:
    """An ``ArchiveProgress`` for the files of one request, mirrored into the job row and its events.

    Progress = (files done + the current file's share) / files; each file has two phases (validation reads every
    member; the apply copies some), so a second ``planned`` moves to the second half of the file's share."""

    def __init__(self, reporter: JobProgressReporter, job: BackgroundJob, total_files: int) -> None:
        self._reporter = reporter
        self._job = job
        self._total_files = max(total_files, 1)
        self._index = 0
        self._name = ""
        self._phase = -1
        self._planned = 0
        self._done = 0

    def file(self, index: int, name: str) -> None:
        """Each file's start is written and published at once (in-file progress is throttled by the reporter)."""
        self._index, self._name, self._phase, self._planned, self._done = index, name, -1, 0, 0
        if self._job.set_progress(index / self._total_files, self._message()):
            job_publish(self._job)

    def planned(self, total_bytes: int) -> None:
        self._phase = min(self._phase + 1, 1)
        self._planned, self._done = total_bytes, 0
        self._report()

    def advance(self, nbytes: int, member: str) -> None:
        self._done += nbytes
        self._report()

    def cancelled(self) -> bool:
        return False  # an import is not cancellable while it runs (SPEC 5.11)

    def _message(self) -> str:
        return f"Importing {self._name} ({self._index + 1}/{self._total_files})"

    def _report(self) -> None:
        share = 0.0
        if self._phase >= 0:
            fraction = min(self._done / self._planned, 1.0) if self._planned else 1.0
            share = 0.5 * self._phase + 0.5 * fraction
        done = int(1000 * (self._index + share))
        self._reporter.step(done=done, total=1000 * self._total_files, message=self._message())


def _backup_before(created_via: str) -> str | None:
    """A synchronous ``metadata_only`` backup; the error text when it did not complete."""
    from backups.services.backups import backup_create_sync  # built alongside (backups)

    try:
        backup = backup_create_sync(backup_type="metadata_only", trigger=created_via)
    except Exception as exc:
        logger.exception("Backup before import failed")
        return str(exc) or type(exc).__name__
    if backup.status != "completed":
        return backup.error or f"backup {backup.status}"
    return None


def _import_one(path: Path, name: str, config: ImportConfig, job: BackgroundJob, progress: _RunProgress) -> dict:
    try:
        return archive_import_file(path, display_name=name, mode=config.mode, job=job, progress=progress)
    except Exception:
        reference = secrets.token_hex(6)
        logger.exception("Import of %s failed (reference %s)", name, reference)
        return error_result(name, UNEXPECTED.format(reference=reference))


def _import_files(
    uploads: Sequence[tuple[Path, str]], config: ImportConfig, job: BackgroundJob, created_via: str
) -> list[dict[str, Any]]:
    with JobProgressReporter(job) as reporter:
        progress = _RunProgress(reporter, job, len(uploads))
        if config.backup_before and config.mode != DRY_RUN:
            if job.set_progress(0.0, BACKING_UP):
                job_publish(job)
            error = _backup_before(created_via)
            if error is not None:
                return [error_result(name, BACKUP_BEFORE_FAILED.format(error=error)) for _path, name in uploads]
        results = []
        for index, (path, name) in enumerate(uploads):
            progress.file(index, name)
            results.append(_import_one(path, name, config, job, progress))
            _discard(path)  # each upload goes as soon as it is done
        return results


def import_response(*, results: list[dict[str, Any]], mode: str, job_id: Any) -> dict[str, Any]:
    processed = sum(1 for result in results if result.get("status") != STATUS_ERROR)
    return {
        "success": processed == len(results),
        "processed_files": processed,
        "total_files": len(results),
        "mode": mode,
        "job_id": str(job_id),
        "results": results,
    }


def import_summary(response: dict[str, Any]) -> str:
    return f"Imported {response['processed_files']} of {response['total_files']} files ({response['mode']})"


def import_run(*, uploads: list[tuple[Path, str]], config: ImportConfig, created_via: str) -> dict[str, Any]:
    """The whole ``POST /import``: one import at a time (409 ``ImportAlreadyRunning``), each ``(path, display
    name)`` imported independently, the report as the job's ``result``; every upload is deleted at the end."""
    stale_uploads_remove()
    try:
        params = {**config.params(), "files": [name for _path, name in uploads]}
        job = exclusive_job_create(kind=BackgroundJobKind.IMPORT, params=params, created_via=created_via)
        job_start(job)
        try:
            results = _import_files(uploads, config, job, created_via)
        except BaseException as exc:
            job_fail(job, f"Import failed: {exc}" if str(exc) else "Import failed")
            raise
        response = import_response(results=results, mode=config.mode, job_id=job.pk)
        job_succeed(job, response, message=import_summary(response))
        return response
    finally:
        for path, _name in uploads:
            _discard(path)


def _discard(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        logger.warning("Could not remove the upload %s", path, exc_info=True)
