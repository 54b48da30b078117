"""Image files of generation results (SPEC 6.3.4 step 5, 3.4): written atomically (temp file + rename) to
``<media root>/generations/<YYYY>/<MM>/<DD>/<job id>/<NNN>.<ext>`` (the job's creation date, UTC), and
deleted only when the path lies inside the media root."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from loraforge.media import media_path, media_root

logger = logging.getLogger("loraforge.generation")

GENERATIONS_DIR = "generations"


class StorageError(Exception):
    """Writing the images failed; ``reason`` is the OS error text. Partial files are already removed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def job_directory(job_id: uuid.UUID, created_at: datetime) -> str:
    """``generations/YYYY/MM/DD/<job id>`` relative to the media root."""
    day = created_at.astimezone(UTC)
    return f"{GENERATIONS_DIR}/{day:%Y}/{day:%m}/{day:%d}/{job_id}"


def result_name(index: int, extension: str) -> str:
    return f"{index:03d}.{extension}"


def _write_atomic(target: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def images_write(*, job_id: uuid.UUID, created_at: datetime, images: Sequence[tuple[int, str, bytes]]) -> list[str]:
    """Write ``(index, extension, bytes)`` items; returns their media-relative paths in the same order.
    Raises ``StorageError`` (with the files of this call removed) when the disk refuses."""
    directory = job_directory(job_id, created_at)
    written: list[str] = []
    try:
        folder = media_root() / directory
        folder.mkdir(parents=True, exist_ok=True)
        for index, extension, data in images:
            relative = f"{directory}/{result_name(index, extension)}"
            _write_atomic(folder / result_name(index, extension), data)
            written.append(relative)
    except OSError as exc:
        files_delete(written)
        raise StorageError(exc.strerror or str(exc)) from exc
    return written


def file_delete(relative: str) -> bool:
    """Remove one media file if the path is safe and inside the media root; True when a file was removed."""
    path = media_path(relative)
    if path is None:
        logger.warning("Not deleting %r: outside the media root", relative)
        return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError:
        logger.warning("Could not delete media file %s", relative, exc_info=True)
        return False
    return True


def files_delete(relatives: Iterable[str]) -> None:
    """Remove files written for a job that did not keep them, then their folder when it is empty."""
    folders: set[Path] = set()
    for relative in relatives:
        path = media_path(relative)
        if path is not None and file_delete(relative):
            folders.add(path.parent)
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()
