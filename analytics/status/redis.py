"""The Redis probe (SPEC 6.9): ``PING`` with a 1 s timeout, and the broker's queue lengths (``queue_depth``).

Runs in a probe thread (no database). Not configured (embedded shape): ``ok`` and ``latency_ms`` are null.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings

from analytics.status.probes import short_reason

TIMEOUT = 1.0
QUEUES = ("generation", "default")


def redis_configured() -> bool:
    return bool(settings.REDIS_URL)


def redis_not_configured() -> dict[str, Any]:
    return {"configured": False, "ok": None, "latency_ms": None, "error": None, "queue_depth": None}


def redis_timed_out() -> dict[str, Any]:
    return {"configured": True, "ok": False, "latency_ms": None, "error": "timeout", "queue_depth": None}


def redis_status() -> dict[str, Any]:
    """``PING`` and ``LLEN`` of the Celery queues (kombu keeps each queue as a Redis list of its name)."""
    if not redis_configured():
        return redis_not_configured()
    import redis

    client = redis.Redis.from_url(str(settings.REDIS_URL), socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
    started = time.perf_counter()
    try:
        client.ping()
        latency = round((time.perf_counter() - started) * 1000.0, 2)
        depth = {name: int(client.llen(name)) for name in QUEUES}
    except Exception as exc:
        return {"configured": True, "ok": False, "latency_ms": None, "error": short_reason(exc), "queue_depth": None}
    finally:
        client.close()
    return {"configured": True, "ok": True, "latency_ms": latency, "error": None, "queue_depth": depth}
