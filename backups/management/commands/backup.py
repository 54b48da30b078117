"""``manage.py backup`` (SPEC 8): a backup written inline, recorded as a Backup row and its job, or a standalone
archive (``--output``, no row)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

from django.core.management.base import CommandParser

from backups.archive.estimate import format_size
from backups.management import EXIT_FATAL, console_progress
from backups.models import Backup, BackupStatus, BackupTrigger, BackupType
from backups.serializers.backups import BackupSerializer
from backups.services.backups import archive_write_atomic, backup_create_sync, backup_path
from loraforge.management import LoraforgeCommand


class Command(LoraforgeCommand):
    help = "Write a backup of the library (SPEC 6.10.4) into the backups folder, or a standalone archive."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--type", choices=BackupType.values, default=BackupType.FULL, dest="backup_type")
        parser.add_argument("--output", metavar="PATH", help="write a standalone archive there (no Backup row)")
        parser.add_argument("--no-retention", action="store_true", help="keep every older backup")
        parser.add_argument("--json", action="store_true", help="print the JSON report instead of the summary")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        console = console_progress(self, no_progress=options["no_progress"])
        try:
            if options["output"]:
                self._standalone(Path(options["output"]).expanduser().resolve(), options, console)
            else:
                self._stored(options, console)
        finally:
            console.close()

    def _stored(self, options: dict[str, Any], console: Any) -> None:
        backup = backup_create_sync(
            backup_type=options["backup_type"], trigger=BackupTrigger.CLI, progress=console,
            retention=not options["no_retention"],
        )  # fmt: skip
        if backup.status != BackupStatus.COMPLETED:
            self._exit(backup.error or f"Backup {backup.pk} failed")
        self.stdout.write(json.dumps(BackupSerializer(backup).data, indent=2) if options["json"] else _summary(backup))

    def _standalone(self, path: Path, options: dict[str, Any], console: Any) -> None:
        if path.exists():
            self._exit(f"{path} already exists")
        try:
            manifest, size, sha256 = archive_write_atomic(path, backup_type=options["backup_type"], progress=console)
        except Exception as exc:
            self._exit(f"Backup failed: {exc}")
        if options["json"]:
            report = {"path": str(path), "size": size, "sha256": sha256, "counts": manifest.counts}
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.stdout.write(f"Backup completed: {path} ({format_size(size)}, sha256 {sha256})")

    def _exit(self, message: str) -> NoReturn:
        self.stderr.write(message)
        raise SystemExit(EXIT_FATAL)


def _summary(backup: Backup) -> str:
    """``Backup <id> completed: <path> (1.50 MB, sha256 <hex>)``."""
    return (
        f"Backup {backup.pk} completed: {backup_path(backup)} ({format_size(backup.size or 0)}, sha256 {backup.sha256})"
    )
