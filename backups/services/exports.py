"""Exports (SPEC 5.9): the estimate, the size check and the streamed archive, for the API, the admin and the
``export_library`` command alike."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.utils import timezone

from backups.archive import format as fmt
from backups.archive.build import archive_estimate, archive_stream, archive_write, format_duration, format_size
from backups.archive.estimate import ArchiveEstimate
from backups.archive.format import ArchiveOptions, Manifest
from backups.archive.progress import ArchiveProgress

MIB = 1024 * 1024
FILE_NAME = "loraforge_export_{moment:%Y%m%d_%H%M%S}.zip"


class ExportTooLarge(Exception):
    """The estimate exceeds ``max_size_mb``: ``str(exc)`` is SPEC 5.9's message."""

    def __init__(self) -> None:
        super().__init__(fmt.TOO_BIG_FOR_LIMIT)


def export_estimate_body(options: ArchiveOptions) -> dict[str, Any]:
    """The answer of ``POST /export/estimate``."""
    estimate = archive_estimate(options)
    return {
        "size": format_size(estimate.size_bytes),
        "time": format_duration(estimate.seconds),
        "size_bytes": estimate.size_bytes,
        "time_seconds": round(estimate.seconds, 2),
        "counts": estimate.counts,
    }


def export_check_size(options: ArchiveOptions, *, max_size_mb: int) -> ArchiveEstimate:
    """The estimate, or ``ExportTooLarge`` when it exceeds ``max_size_mb``."""
    estimate = archive_estimate(options)
    if estimate.size_bytes > max_size_mb * MIB:
        raise ExportTooLarge()
    return estimate


def export_file_name(moment: datetime | None = None) -> str:
    return FILE_NAME.format(moment=(moment or timezone.now()).astimezone(UTC))


def export_stream(options: ArchiveOptions) -> Iterator[bytes]:
    """The archive as chunks for a streamed download (memory bounded whatever its size)."""
    return archive_stream(options, kind=fmt.KIND_EXPORT)


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    size: int
    manifest: Manifest


def export_to_file(output: Path, options: ArchiveOptions, *, progress: ArchiveProgress | None = None) -> ExportedFile:
    """Write the archive to ``<output>.part``, flush it to disk, then rename it to ``output`` (replacing a file
    there); nothing is left behind when writing fails or is cancelled."""
    part = output.with_name(output.name + ".part")
    try:
        with part.open("wb") as target:
            manifest = archive_write(target, options, kind=fmt.KIND_EXPORT, progress=progress)
            target.flush()
            os.fsync(target.fileno())
        os.replace(part, output)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return ExportedFile(path=output, size=output.stat().st_size, manifest=manifest)
