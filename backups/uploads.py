"""Archive uploads streamed to disk (SPEC 4.6, 5.9): an upload handler that writes each file of ``POST /import``
straight into ``LORAFORGE_UPLOAD_DIR``, counts what it stored and stops the request once the sum of the files
passes ``LORAFORGE_MAX_UPLOAD_MB`` (a body sent without ``Content-Length``, or lying about it), removing every file it
wrote. Nothing of an upload is held in memory beyond one chunk."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest
from rest_framework.exceptions import ValidationError

from loraforge.errors import PayloadTooLarge

logger = logging.getLogger("loraforge.backups")

FILES_FIELD = "files"
MAX_FILES = 10
CHUNK_SIZE = 1024 * 1024
TOO_MANY_FILES = f"At most {MAX_FILES} files can be imported at once"
UNKNOWN_FIELD = "Unknown field."
UPLOAD_PATTERN = "upload-*.part"
STALE_UPLOAD_SECONDS = 24 * 3600  # no request streams or imports one file for a day


def upload_too_large_detail() -> str:
    return f"Upload too large (limit {settings.LORAFORGE_MAX_UPLOAD_MB} MB)"


class StoredUpload(UploadedFile):
    """A file of the request, complete on disk at ``temporary_file_path()``."""

    def __init__(self, path: Path, *, name: str, size: int, content_type: str | None) -> None:
        super().__init__(path.open("rb"), name=name, content_type=content_type, size=size)
        self.path = path

    def temporary_file_path(self) -> str:
        return str(self.path)


class ArchiveUploadHandler(FileUploadHandler):
    """Each file of field ``files`` into ``<LORAFORGE_UPLOAD_DIR>/upload-<hex>.part``; any other file field, an 11th
    file, or more than ``LORAFORGE_MAX_UPLOAD_MB`` in all stops the parse (400/413) with everything removed.
    ``discard()`` removes every file it wrote (the view calls it when the request ends)."""

    chunk_size = CHUNK_SIZE

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit = settings.LORAFORGE_MAX_UPLOAD_MB * 1024 * 1024
        self.directory = Path(settings.LORAFORGE_UPLOAD_DIR)
        self.paths: list[Path] = []
        self.received = 0
        self._sink: IO[bytes] | None = None

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        if field_name != FILES_FIELD:
            self.discard()
            raise ValidationError({field_name: [UNKNOWN_FIELD]})
        if len(self.paths) >= MAX_FILES:
            self.discard()
            raise ValidationError({FILES_FIELD: [TOO_MANY_FILES]})
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"upload-{uuid.uuid4().hex}.part"
        self.paths.append(path)
        self._sink = path.open("xb")

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.discard()
            raise PayloadTooLarge(upload_too_large_detail())
        assert self._sink is not None
        self._sink.write(raw_data)

    def file_complete(self, file_size: int) -> StoredUpload:
        assert self._sink is not None
        self._sink.close()
        self._sink = None
        return StoredUpload(self.paths[-1], name=self.file_name or "upload.zip", size=file_size, content_type=None)

    def upload_interrupted(self) -> None:
        self.discard()

    def discard(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        for path in self.paths:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                logger.warning("Could not remove the upload %s", path, exc_info=True)


def stale_uploads_remove(*, now: float | None = None) -> int:
    """Remove uploads a killed process left behind (older than a day); how many went."""
    directory = Path(settings.LORAFORGE_UPLOAD_DIR)
    before = (time.time() if now is None else now) - STALE_UPLOAD_SECONDS
    removed = 0
    for path in directory.glob(UPLOAD_PATTERN) if directory.is_dir() else ():
        try:
            if path.stat().st_mtime < before:
                path.unlink()
                removed += 1
        except OSError:
            continue  # gone meanwhile, or not ours to remove
    return removed
