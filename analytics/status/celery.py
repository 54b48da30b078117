"""The Celery probe (SPEC 6.9): embedded, the worker inside this process is running; distributed, the workers
that answer a broadcast ``ping`` within 1 s. Runs in a probe thread (no database)."""

from __future__ import annotations

import os
import socket
from typing import Any

from django.conf import settings

from analytics.status.probes import short_reason
from analytics.status.redis import redis_status
from loraforge.embedded import embedded_worker_alive

PING_TIMEOUT = 1.0


def celery_mode() -> str:
    return str(settings.LORAFORGE_MODE)


def celery_timed_out() -> dict[str, Any]:
    return {"mode": celery_mode(), "ok": False, "workers": [], "error": "timeout"}


def celery_status() -> dict[str, Any]:
    if celery_mode() == "embedded":
        return _embedded()
    return _distributed()


def _embedded() -> dict[str, Any]:
    if not embedded_worker_alive():
        return {"mode": "embedded", "ok": False, "workers": [], "error": None}
    name = f"embedded-{os.getpid()}@{socket.gethostname()}"
    return {"mode": "embedded", "ok": True, "workers": [{"name": name, "ok": True}], "error": None}


def _distributed() -> dict[str, Any]:
    from loraforge.celery import app

    broker = redis_status()
    if not broker["ok"]:  # kombu would retry the connection until the deadline: answer at once
        return {"mode": "distributed", "ok": False, "workers": [], "error": broker["error"]}
    try:
        replies = app.control.ping(timeout=PING_TIMEOUT) or []
    except Exception as exc:
        return {"mode": "distributed", "ok": False, "workers": [], "error": short_reason(exc)}
    workers = [
        {"name": str(name), "ok": isinstance(answer, dict) and answer.get("ok") == "pong"}
        for reply in replies
        for name, answer in reply.items()
    ]
    workers.sort(key=lambda worker: worker["name"])
    return {"mode": "distributed", "ok": any(worker["ok"] for worker in workers), "workers": workers, "error": None}
