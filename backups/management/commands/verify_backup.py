"""``manage.py verify_backup FILE|BACKUP_ID``: re-read an archive and check every member against its manifest (and,
for a stored backup, the whole file against the SHA-256 its row recorded). Prints ``OK`` with the counts (exit 0),
or every problem on stderr (exit 1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

from django.core.management.base import CommandParser

from backups.management import EXIT_FATAL, NOT_FOUND, backup_or_file
from backups.services.backups import backup_path
from backups.services.restore import archive_check, backup_check
from loraforge.management import LoraforgeCommand


class Command(LoraforgeCommand):
    help = "Check a backup (its id) or an archive file against its manifest and recorded checksum."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", metavar="FILE|BACKUP_ID")
        parser.add_argument("--json", action="store_true", help="print the JSON report instead of the summary")

    def handle(self, *args: Any, **options: Any) -> None:
        source = backup_or_file(options["source"])
        if source is None:
            self._exit([NOT_FOUND.format(value=options["source"])], as_json=options["json"])
        path = source if isinstance(source, Path) else backup_path(source)
        archive, problems = archive_check(source) if isinstance(source, Path) else backup_check(source)
        if archive is None or problems:
            self._exit(problems, as_json=options["json"], path=path)
        counts = {key: value for key, value in (archive.manifest.get("counts") or {}).items() if value}
        members = len(archive.members)
        if options["json"]:
            report = {"ok": True, "path": str(path), "members": members, "counts": counts, "problems": []}
            self.stdout.write(json.dumps(report, indent=2))
            return
        listed = ", ".join(f"{value} {key}" for key, value in counts.items()) or "empty"
        self.stdout.write(f"OK: {path}: {members} members match the manifest ({listed})")

    def _exit(self, problems: list[str], *, as_json: bool, path: Path | None = None) -> NoReturn:
        if as_json:
            report = {"ok": False, "path": str(path) if path else None, "problems": problems}
            self.stdout.write(json.dumps(report, indent=2))
        for problem in problems:
            self.stderr.write(problem)
        raise SystemExit(EXIT_FATAL)
