"""The in-memory channel layer of the embedded shape, safe for senders in other threads.

Channels' ``InMemoryChannelLayer`` wakes a waiting receiver with ``asyncio.Queue.put_nowait``, which is not
thread-safe: an event published by an embedded worker thread could sit unnoticed until the web process's event
loop woke up for another reason. Here a send from another thread is handed to the receiver's running loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.layers import InMemoryChannelLayer

logger = logging.getLogger("loraforge.progress")

HANDOFF_TIMEOUT = 5.0


class ThreadSafeInMemoryChannelLayer(InMemoryChannelLayer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._receiver_loops: dict[str, asyncio.AbstractEventLoop] = {}

    async def receive(self, channel: str) -> Any:
        self._receiver_loops[channel] = asyncio.get_running_loop()
        return await super().receive(channel)

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        loop = self._receiver_loops.get(channel)
        if loop is None or loop is asyncio.get_running_loop() or not loop.is_running():
            await super().send(channel, message)
            return
        handoff = asyncio.run_coroutine_threadsafe(InMemoryChannelLayer.send(self, channel, message), loop)
        try:
            await asyncio.wait_for(asyncio.wrap_future(handoff), HANDOFF_TIMEOUT)
        except TimeoutError:
            logger.warning("Channel %s: the receiving event loop did not take a message in time", channel)
