"""The progress WebSocket (SPEC 6.5): authentication, subscriptions, snapshots and bad-message replies."""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from loraforge.progress import ALL_JOBS_GROUP, envelope, job_group
from loraforge.progress_hub import ProgressHub, progress_hub

logger = logging.getLogger("loraforge.consumers")

MAX_FRAME_BYTES = 64 * 1024
MAX_SUBSCRIPTIONS = 1000


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _session_key(scope: dict[str, Any]) -> str | None:
    cookie_header = _header(scope, b"cookie") or ""
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == settings.SESSION_COOKIE_NAME:
            return value
    return None


def _origin_allowed(scope: dict[str, Any]) -> bool:
    origin = _header(scope, b"origin")
    if not origin:
        return False
    host = urlsplit(origin).hostname or ""
    allowed = {h.strip("[]").lower() for h in settings.ALLOWED_HOSTS}
    return "*" in allowed or host.lower() in allowed


def authenticate_scope(scope: dict[str, Any]) -> bool:
    """API key (header or ``?api_key=``) or the session cookie of a staff user with a trusted Origin."""
    from loraforge.api_keys import api_key_authenticate

    if not settings.LORAFORGE_AUTH:
        return True
    key = _header(scope, b"x-api-key")
    if key is None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        key = (query.get("api_key") or [None])[0]
    if key is not None:
        return api_key_authenticate(key.strip()) is not None
    session_key = _session_key(scope)
    if not session_key or not _origin_allowed(scope):
        return False
    user = _session_user(session_key)
    return bool(user.is_active and user.is_staff)


def _session_user(session_key: str) -> Any:
    """The session's user exactly as HTTP sees it: Django's ``get_user`` checks the session's auth hash
    (a password change or logout ends it), the backend and that the user may still log in."""
    from importlib import import_module

    from django.contrib.auth import get_user
    from django.http import HttpRequest

    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    return get_user(request)


def _layer() -> Any:
    from channels.layers import get_channel_layer

    return get_channel_layer()


class ProgressConsumer(AsyncWebsocketConsumer):
    # No channel per socket: the event loop's ProgressHub holds one subscription and fans events out in memory.
    channel_layer_alias = "__progress_hub__"

    async def connect(self) -> None:
        self.explicit: set[str] = set()
        self.all_jobs = False
        self.joined: set[str] = set()
        # Live events that arrive while a subscription is being handled wait here, so they follow its confirmation
        # and snapshots instead of overtaking them (None: not handling one).
        self.held: list[tuple[str, dict[str, Any], str]] | None = None
        if not await database_sync_to_async(authenticate_scope)(self.scope):
            await self.close(code=4401)
            return
        await self.accept()
        await self.send_event(
            "connected",
            {
                "connection_id": f"conn_{secrets.token_hex(6)}",
                "message": "Connected to progress monitoring",
                "protocol_version": 1,
            },
        )

    async def disconnect(self, code: int) -> None:
        hub = self.hub()
        for group in list(getattr(self, "joined", set())):
            await hub.discard(group, self)
        self.joined = set()

    def hub(self) -> ProgressHub:
        return progress_hub(_layer)

    async def send_event(self, event_type: str, data: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(envelope(event_type, data)))

    async def send_error(self, message: str, code: str) -> None:
        await self.send_event("error", {"message": message, "code": code})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.send_error("Binary frames are not supported", "binary_not_supported")
            return
        if len(text_data.encode("utf-8")) > MAX_FRAME_BYTES:
            await self.send_error("Message too large", "message_too_large")
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            await self.send_error("Invalid JSON", "invalid_json")
            return
        if not isinstance(message, dict):
            await self.send_error("Message must be a JSON object", "not_an_object")
            return
        kind = message.get("type")
        if kind == "ping":
            await self.send_event("pong", {})
        elif kind in ("subscribe", "unsubscribe"):
            await self.handle_subscription(kind, message)
        else:
            await self.send_error(f"Unknown message type '{kind}'", "unknown_type")

    async def handle_subscription(self, kind: str, message: dict[str, Any]) -> None:
        job_ids = message.get("job_ids")
        if job_ids is not None and not isinstance(job_ids, list):
            await self.send_error("job_ids must be a list of job ids or null", "invalid_payload")
            return
        valid, invalid = _split_ids(job_ids or [])
        if invalid:
            await self.send_error(f"Invalid job ids: {', '.join(invalid)}", "invalid_job_ids")
        snapshot_ids: list[str] | None = []
        if kind == "subscribe":
            if job_ids is None:
                snapshot_ids = None if not self.all_jobs else []
                self.all_jobs = True
            else:
                if len(self.explicit | set(valid)) > MAX_SUBSCRIPTIONS:
                    await self.send_error(
                        f"Too many subscriptions (limit {MAX_SUBSCRIPTIONS})", "too_many_subscriptions"
                    )
                    return
                snapshot_ids = sorted(set(valid) - self.explicit)
                self.explicit.update(valid)
        elif job_ids is None:
            self.all_jobs = False
            self.explicit.clear()
        else:
            self.explicit.difference_update(valid)
        self.held = []
        try:
            # Groups first, then the snapshots: nothing published in between is lost. The snapshots are read
            # before the confirmation, so they show the jobs that existed when the client subscribed (a job it
            # creates after the confirmation arrives live, starting with its first event).
            await self.sync_groups()
            snapshots = await self.read_snapshots(snapshot_ids)
            await self.send_event("subscription_confirmed", {"job_ids": sorted(self.explicit), "all": self.all_jobs})
            for event in snapshots:
                await self.send(text_data=json.dumps(event))
            while self.held:
                await self.forward(*self.held.pop(0))
        finally:
            self.held = None

    async def read_snapshots(self, job_ids: list[str] | None) -> list[dict[str, Any]]:
        """``snapshot: true`` events for newly subscribed existing jobs, or (None) for the active jobs."""
        from loraforge.jobs.snapshots import job_snapshots

        if job_ids == []:
            return []
        try:
            return list(await database_sync_to_async(job_snapshots)(job_ids))
        except Exception:
            logger.warning("Could not read job snapshots", exc_info=True)
            return []

    async def sync_groups(self) -> None:
        wanted = {job_group(job_id) for job_id in self.explicit}
        if self.all_jobs:
            wanted.add(ALL_JOBS_GROUP)
        hub = self.hub()
        for group in self.joined - wanted:
            await hub.discard(group, self)
            self.joined.discard(group)
        try:
            for group in wanted - self.joined:
                await hub.add(group, self)
                self.joined.add(group)
        except Exception:
            logger.warning("Channel layer unavailable", exc_info=True)
            await self.send_error("Live progress is temporarily unavailable", "channel_layer_unavailable")

    async def deliver(self, group: str, event: dict[str, Any], text: str) -> None:
        """From the hub. Every event goes to both groups; a socket in both takes it from the "all" group only."""
        if self.held is not None:
            self.held.append((group, event, text))
        else:
            await self.forward(group, event, text)

    async def forward(self, group: str, event: dict[str, Any], text: str) -> None:
        from_all = group == ALL_JOBS_GROUP
        job_id = str(event.get("data", {}).get("job_id", ""))
        if (from_all and self.all_jobs) or (not from_all and not self.all_jobs and job_id in self.explicit):
            await self.send(text_data=text)


def _split_ids(values: list[Any]) -> tuple[list[str], list[str]]:
    valid: list[str] = []
    invalid: list[str] = []
    for value in values:
        try:
            valid.append(str(uuid.UUID(str(value))) if isinstance(value, str) else _raise())
        except ValueError:
            invalid.append(str(value))
    return valid, invalid


def _raise() -> str:
    raise ValueError("not a string")
