"""``manage.py create_api_key``: the key on stdout, everything else on stderr (SPEC 8)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from loraforge.api_keys import api_key_create
from loraforge.management import LoraforgeCommand
from loraforge.models import ApiKey

NAME_MAX_LENGTH = ApiKey._meta.get_field("name").max_length or 100


class Command(LoraforgeCommand):
    help = "Create an API key. Prints only the key on stdout; it cannot be shown again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="label of the key")
        parser.add_argument("--read-only", action="store_true", help="the key may only read (GET/HEAD/OPTIONS)")
        parser.add_argument("--expires-days", type=int, metavar="N", help="the key expires N days from now")

    def handle(self, *args: Any, name: str, read_only: bool, expires_days: int | None, **options: Any) -> None:
        name = name.strip()
        if not name or len(name) > NAME_MAX_LENGTH:
            raise CommandError(f"--name must be 1..{NAME_MAX_LENGTH} characters")
        if expires_days is not None and expires_days <= 0:
            raise CommandError("--expires-days must be a positive number of days")
        expires_at = timezone.now() + timedelta(days=expires_days) if expires_days is not None else None
        created = api_key_create(name=name, read_only=read_only, expires_at=expires_at)
        self.stdout.write(created.plain_key)
        self.stderr.write(
            f"Created API key '{created.api_key.name}' ({created.api_key.prefix}). "
            "Store it now; it cannot be shown again."
        )
