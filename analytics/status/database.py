"""The database probe (SPEC 6.9): ``SELECT 1`` with its latency."""

from __future__ import annotations

import time
from typing import Any

from django.db import DatabaseError, connection


def database_status() -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return {"engine": connection.vendor, "ok": False, "latency_ms": None, "error": type(exc).__name__}
    latency = round((time.perf_counter() - started) * 1000.0, 2)
    return {"engine": connection.vendor, "ok": True, "latency_ms": latency, "error": None}
