"""``manage.py revoke_api_key PREFIX|ID`` (SPEC 8)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from loraforge.api_keys import api_key_lookup, api_key_revoke
from loraforge.management import LoraforgeCommand


class Command(LoraforgeCommand):
    help = "Revoke an API key given its prefix (lf_<public_id>), its public id or its UUID."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("reference", metavar="PREFIX|ID", help="lf_<public_id>, the public id or the key's UUID")

    def handle(self, *args: Any, reference: str, **options: Any) -> None:
        api_key = api_key_lookup(reference)
        if api_key is None:
            raise CommandError(f"No API key matches '{reference}'")
        api_key_revoke(api_key=api_key)
        self.stdout.write(f"Revoked API key '{api_key.name}'")
