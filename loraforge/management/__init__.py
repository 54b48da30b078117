"""Shared pieces of the ``manage.py`` commands (SPEC 8)."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser


class LoraforgeCommandParser(CommandParser):
    """Usage errors exit with status 1 (SPEC 8: 1 = fatal or usage error), not argparse's 2."""

    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            self.print_usage(sys.stderr)
            self.exit(1, f"{self.prog}: error: {message}\n")
        raise CommandError(f"Error: {message}")


class LoraforgeCommand(BaseCommand):
    """Base of LoRAForge's commands: SPEC 8 exit codes for usage errors."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = LoraforgeCommandParser
        return parser
