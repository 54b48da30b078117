"""``manage.py export_library OUTPUT`` (SPEC 8): an export archive (SPEC 6.10.1) written to a file, with a tqdm bar
over bytes; prints the path, the size and the counts. Exit 0 done, 1 fatal or usage error, 2 written with files
left out (each named on stderr)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, NoReturn

from django.core.management.base import CommandParser

from adapters.models import Adapter
from backups.archive.build import format_size
from backups.archive.format import COUNT_KEYS, ArchiveOptions
from backups.management import console_progress
from backups.services.exports import ExportedFile, export_file_name, export_to_file
from loraforge.management import LoraforgeCommand

EXIT_OK, EXIT_FATAL, EXIT_ITEM_ERRORS = 0, 1, 2


class Command(LoraforgeCommand):
    help = "Write an export archive of the library (adapter records and metadata; more parts with the flags)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("output", metavar="OUTPUT", help="the archive to write (a folder: a dated name in it)")
        parser.add_argument("--files", action="store_true", help="include the LoRA model files")
        parser.add_argument("--no-metadata", action="store_true", help="leave sidecar files and previews out")
        parser.add_argument("--embeddings", action="store_true", help="include embedding vectors")
        parser.add_argument("--generations", action="store_true", help="include generation jobs, results, images")
        parser.add_argument("--user-data", action="store_true", help="include recommendation user data")
        parser.add_argument("--system-config", action="store_true", help="include backends (never passwords)")
        parser.add_argument("--analytics", action="store_true", help="include resource samples")
        parser.add_argument(
            "--adapter", action="append", default=[], metavar="ID", help="only this adapter (repeatable)"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        output = self._output(options["output"])
        archive_options = ArchiveOptions(
            lora_files=options["files"],
            lora_metadata=not options["no_metadata"],
            lora_embeddings=options["embeddings"],
            generations=options["generations"],
            user_data=options["user_data"],
            system_config=options["system_config"],
            analytics=options["analytics"],
            adapter_ids=self._adapter_ids(options["adapter"]),
        )
        progress = console_progress(self, no_progress=options["no_progress"])
        try:
            exported = export_to_file(output, archive_options, progress=progress)
        except OSError as exc:
            self._exit(EXIT_FATAL, f"Could not write {output}: {exc.strerror or exc}")
        finally:
            progress.close()
        self._report(exported)

    def _output(self, value: str) -> Path:
        output = Path(value).expanduser()
        if output.is_dir():
            output = output / export_file_name()
        if not output.parent.is_dir():
            self._exit(EXIT_FATAL, f"Folder does not exist: {output.parent}")
        return output.absolute()

    def _adapter_ids(self, values: list[str]) -> tuple[str, ...] | None:
        """The ``--adapter`` ids, normalised and without repeats; one that names no adapter is fatal."""
        if not values:
            return None
        ids: list[str] = []
        unknown: list[str] = []
        for value in values:
            try:
                ids.append(str(uuid.UUID(value.strip())))
            except ValueError:
                unknown.append(value)
        ids = list(dict.fromkeys(ids))
        known = {str(pk) for pk in Adapter.objects.filter(pk__in=ids).values_list("pk", flat=True)}
        unknown += [value for value in ids if value not in known]
        if unknown:
            self._exit(EXIT_FATAL, f"Unknown adapter ids: {', '.join(unknown)}")
        return tuple(ids)

    def _report(self, exported: ExportedFile) -> None:
        counts = exported.manifest.counts
        summary = ", ".join(f"{counts.get(key, 0)} {key}" for key in COUNT_KEYS)
        self.stdout.write(f"Exported {exported.path} ({format_size(exported.size)}): {summary}")
        for warning in exported.manifest.warnings:
            self.stderr.write(warning)
        if exported.manifest.warnings:
            raise SystemExit(EXIT_ITEM_ERRORS)

    def _exit(self, code: int, message: str) -> NoReturn:
        self.stderr.write(message)
        raise SystemExit(code)
