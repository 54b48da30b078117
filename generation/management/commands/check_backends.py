"""``manage.py check_backends [--json]``: live health of every backend; exit 1 when an enabled one is unhealthy."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from generation.backends.selectors import backends_for_list
from generation.backends.services import backends_check
from generation.models import GenerationBackend
from loraforge.management import LoraforgeCommand

COLUMNS = ("NAME", "URL", "ENABLED", "HEALTHY", "VERSION", "ERROR")


def version_text(backend: GenerationBackend) -> str:
    info = backend.version_info or {}
    return " ".join(str(info[key]) for key in ("app", "commit") if info.get(key)) or "-"


def backend_record(backend: GenerationBackend) -> dict[str, Any]:
    return {
        "id": str(backend.pk),
        "name": backend.name,
        "url": backend.url,
        "enabled": backend.enabled,
        "healthy": backend.healthy,
        "version": backend.version_info or None,
        "error": backend.last_error,
    }


def backend_row(backend: GenerationBackend) -> tuple[str, ...]:
    return (
        backend.name,
        backend.url,
        "yes" if backend.enabled else "no",
        "yes" if backend.healthy else "no",
        version_text(backend),
        backend.last_error or "-",
    )


def render_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[index]) for row in [COLUMNS, *rows]) for index in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [COLUMNS, *rows]
    )


class Command(LoraforgeCommand):
    help = "Check the health of every generation backend now (bypassing the cache)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", dest="as_json", help="print a JSON list instead of a table")

    def handle(self, *args: Any, as_json: bool, **options: Any) -> None:
        backends = backends_check(backends=backends_for_list(), live=True)
        if as_json:
            self.stdout.write(
                json.dumps([backend_record(backend) for backend in backends], indent=2, ensure_ascii=False)
            )
        elif not backends:
            self.stdout.write("No generation backends.")
        else:
            self.stdout.write(render_table([backend_row(backend) for backend in backends]))
        unhealthy = [backend.name for backend in backends if backend.enabled and not backend.healthy]
        if unhealthy:
            raise CommandError(f"Unhealthy enabled backends: {', '.join(unhealthy)}", returncode=1)
