"""One channel-layer subscription per web process, fanned out in memory to the WebSockets (SPEC 6.5).

With one channel per socket, every event in ``lf.jobs.all`` became one Redis message per connected socket (500
sockets: 500 Redis round trips and 500 JSON encodings per event). The hub joins each group once for the whole
event loop, receives each event once, encodes it once, and hands the text to the sockets that want it. Group
memberships are renewed every hour (channels-redis forgets them after ``group_expiry``) and after the layer failed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Callable
from typing import Any, Protocol

logger = logging.getLogger("loraforge.consumers")

RENEW_SECONDS = 3600.0
RETRY_SECONDS = 1.0


class HubMember(Protocol):
    async def deliver(self, group: str, event: dict[str, Any], text: str) -> None:
        """Send ``text`` (``event`` encoded) if this socket wants an event that came from ``group``."""


class ProgressHub:
    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.channel: str | None = None
        self.members: dict[str, set[HubMember]] = {}
        self.joined: set[str] = set()
        self.task: asyncio.Task[None] | None = None

    # --- membership -----------------------------------------------------------------------------
    async def add(self, group: str, member: HubMember) -> None:
        """Raises when the channel layer is unavailable (the socket is told; the next subscribe retries)."""
        await self._ensure_channel()
        self.members.setdefault(group, set()).add(member)
        if group not in self.joined:
            assert self.channel is not None
            await self.layer.group_add(group, self.channel)
            self.joined.add(group)
        self._ensure_task()

    async def discard(self, group: str, member: HubMember) -> None:
        members = self.members.get(group)
        if members is None:
            return
        members.discard(member)
        if members:
            return
        del self.members[group]
        if group in self.joined and self.channel is not None:
            self.joined.discard(group)
            try:
                await self.layer.group_discard(group, self.channel)
            except Exception:
                logger.debug("group_discard failed for %s", group, exc_info=True)
        if not self.members:
            self._stop()

    # --- receiving ------------------------------------------------------------------------------
    async def _ensure_channel(self) -> None:
        if self.channel is None:
            self.channel = await self.layer.new_channel(prefix="progress-hub.")

    def _ensure_task(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run(), name="progress-hub")

    def _stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
        self.task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        renew_at = loop.time() + RENEW_SECONDS
        while self.members:
            try:
                if loop.time() >= renew_at:
                    await self._rejoin()
                    renew_at = loop.time() + RENEW_SECONDS
                assert self.channel is not None
                message = await self._receive(renew_at - loop.time())
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("Progress hub: channel layer unavailable; retrying", exc_info=True)
                await asyncio.sleep(RETRY_SECONDS)
                renew_at = loop.time()  # memberships may be gone (e.g. Redis restarted)
                continue
            if message is not None:
                await self._dispatch(message)

    async def _receive(self, timeout: float) -> dict[str, Any] | None:
        assert self.channel is not None
        try:
            message: dict[str, Any] = await asyncio.wait_for(self.layer.receive(self.channel), max(timeout, 0.01))
        except TimeoutError:
            return None
        return message

    async def _rejoin(self) -> None:
        assert self.channel is not None
        for group in list(self.members):
            await self.layer.group_add(group, self.channel)
            self.joined.add(group)

    async def _dispatch(self, message: dict[str, Any]) -> None:
        group = str(message.get("group", ""))
        event = message.get("event")
        if not isinstance(event, dict):
            return
        text = json.dumps(event)
        for member in list(self.members.get(group, ())):
            try:
                await member.deliver(group, event, text)
            except Exception:
                logger.debug("Could not deliver an event to a socket", exc_info=True)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ProgressHub] = weakref.WeakKeyDictionary()


def progress_hub(layer_factory: Callable[[], Any]) -> ProgressHub:
    """The hub of the running event loop (one per web process under uvicorn)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = ProgressHub(layer_factory())
        _hubs[loop] = hub
    return hub
