"""``manage.py rebuild_analytics``: recompute the analytics rollups from the delivery jobs (docs/DECISIONS.md).

The database triggers keep the rollups exact; this is for jobs written with the triggers bypassed (a bulk load, a
restore with triggers disabled)."""

from __future__ import annotations

import time
from typing import Any

from analytics.rollups import rollups_rebuild
from loraforge.management import LoraforgeCommand


class Command(LoraforgeCommand):
    help = "Recompute the analytics rollups (hourly and daily job, error and adapter counts) from the delivery jobs."

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        rollups_rebuild()
        self.stdout.write(f"Analytics rollups rebuilt in {time.monotonic() - started:.1f} s.")
