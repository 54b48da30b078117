"""Helpers of the backup tests."""

from __future__ import annotations

import hashlib
import struct
import zipfile
from pathlib import Path
from typing import Any

from django.db import connection

from backups.models import Backup
from backups.services.backups import backup_create_sync, backup_path


def completed_backup(backup_type: str = "full", trigger: str = "cli", **kwargs: Any) -> Backup:
    backup = backup_create_sync(backup_type=backup_type, trigger=trigger, **kwargs)
    assert backup.status == "completed", backup.error
    return backup


def stored_file(backup: Backup) -> Path:
    path = backup_path(backup)
    assert path is not None
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tamper(path: Path, offset: int | None = None) -> None:
    """Change one byte of ``path`` (by default in the middle of the file)."""
    data = bytearray(path.read_bytes())
    index = len(data) // 2 if offset is None else offset
    data[index] ^= 0xFF
    path.write_bytes(bytes(data))


def first_member_data_offset(path: Path) -> int:
    """Where the first member's (compressed) data starts in the ZIP file: a byte changed there breaks that member."""
    with zipfile.ZipFile(path) as archive:
        info = archive.infolist()[0]
    with path.open("rb") as handle:
        handle.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", handle.read(4))
    return info.header_offset + 30 + name_length + extra_length


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob("*.part")) if folder.exists() else []


JOB_TABLES = ("deliveries_deliveryjob", "deliveries_deliveryjobadapter")


def job_table_indexes() -> dict[str, str]:
    """Every index of the jobs and links tables by name, with its definition."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name, coalesce(sql, 'auto') FROM sqlite_master WHERE type = 'index' AND tbl_name IN (%s, %s)",
                JOB_TABLES,
            )
        else:
            cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN (%s, %s)", JOB_TABLES)
        return dict(cursor.fetchall())
