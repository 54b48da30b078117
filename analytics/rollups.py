"""Writes of the analytics rollups: the full rebuild (the triggers keep them exact between rebuilds)."""

from __future__ import annotations

from django.db import connection, transaction

from analytics import db_triggers


def rollups_rebuild() -> None:
    """Recompute every rollup from the delivery jobs and their adapter links, in one transaction; on PostgreSQL
    concurrent job writes wait for it (``SHARE`` lock), so nothing written meanwhile is lost or counted twice."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {db_triggers.JOBS}, {db_triggers.LINKS} IN SHARE MODE")
        db_triggers.rebuild(connection)
