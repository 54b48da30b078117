"""Pieces the backups app's commands share (SPEC 8): the progress bar's stream and ``FILE|BACKUP_ID`` arguments."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import IO, Any

from backups.archive.console import ConsoleArchiveProgress
from backups.models import Backup

EXIT_OK, EXIT_FATAL = 0, 1
NOT_FOUND = "No backup or archive file named {value}"


def console_progress(command: Any, *, no_progress: bool) -> ConsoleArchiveProgress:
    """A tqdm bar over bytes on the command's stderr, when it is a terminal and ``--no-progress`` was not given."""
    stream: IO[str] = getattr(command.stderr, "_out", sys.stderr)  # tqdm needs the raw stream, not the wrapper
    return ConsoleArchiveProgress(stream=stream, enabled=not no_progress and stream.isatty())


def backup_or_file(value: str) -> Backup | Path | None:
    """A Backup when ``value`` is the id of one, else an existing archive file, else None."""
    try:
        backup_id = uuid.UUID(value.strip())
    except ValueError:
        backup_id = None
    if backup_id is not None:
        backup = Backup.objects.filter(pk=backup_id).first()
        if backup is not None:
            return backup
    path = Path(value).expanduser()
    return path.resolve() if path.is_file() else None
