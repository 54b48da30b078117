"""``manage.py list_api_keys [--json]``: keys are never printed, only their prefixes (SPEC 8)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import CommandParser
from django.utils import timezone

from loraforge.management import LoraforgeCommand
from loraforge.models import ApiKey

COLUMNS = ("NAME", "PREFIX", "READ-ONLY", "CREATED", "LAST USED", "EXPIRES", "STATUS")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _short(value: datetime | None, empty: str) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else empty


def key_record(api_key: ApiKey, now: datetime) -> dict[str, Any]:
    return {
        "id": str(api_key.pk),
        "name": api_key.name,
        "prefix": api_key.prefix,
        "read_only": api_key.read_only,
        "created_at": _iso(api_key.created_at),
        "last_used_at": _iso(api_key.last_used_at),
        "expires_at": _iso(api_key.expires_at),
        "revoked_at": _iso(api_key.revoked_at),
        "status": api_key.state(now),
    }


def key_row(api_key: ApiKey, now: datetime) -> tuple[str, ...]:
    return (
        api_key.name,
        api_key.prefix,
        "yes" if api_key.read_only else "no",
        _short(api_key.created_at, "-"),
        _short(api_key.last_used_at, "never"),
        _short(api_key.expires_at, "never"),
        api_key.state(now),
    )


def render_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[index]) for row in [COLUMNS, *rows]) for index in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    header = "  ".join(cell.ljust(width) for cell, width in zip(COLUMNS, widths, strict=True)).rstrip()
    return "\n".join([header, *lines])


class Command(LoraforgeCommand):
    help = "List API keys (name, prefix, read-only, created, last used, expires, status). Keys are never shown."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print a JSON list instead of the table"
        )

    def handle(self, *args: Any, as_json: bool, **options: Any) -> None:
        now = timezone.now()
        api_keys = list(ApiKey.objects.order_by("created_at", "name"))
        if as_json:
            self.stdout.write(
                json.dumps([key_record(api_key, now) for api_key in api_keys], indent=2, ensure_ascii=False)
            )
        elif not api_keys:
            self.stdout.write("No API keys.")
        else:
            self.stdout.write(render_table([key_row(api_key, now) for api_key in api_keys]))
