"""Events publishers sent to the in-memory channel layer, read back as a WebSocket client would get them."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from loraforge.progress import ALL_JOBS_GROUP

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


class EventRecorder:
    """A channel in ``lf.jobs.all``: ``events()`` returns (and removes) the envelopes published so far."""

    def __init__(self, group: str = ALL_JOBS_GROUP) -> None:
        self.layer = get_channel_layer()
        self.group = group
        self.channel = async_to_sync(self.layer.new_channel)()
        async_to_sync(self.layer.group_add)(group, self.channel)

    def events(self, *, wait: float = 0.05) -> list[dict[str, Any]]:
        async def collect() -> list[dict[str, Any]]:
            found = []
            while True:
                try:
                    found.append(await asyncio.wait_for(self.layer.receive(self.channel), wait))
                except TimeoutError:
                    return found

        messages = async_to_sync(collect)()
        # The waiting receive bound this channel's queue to that (finished) event loop: go on with a new one.
        self.close()
        self.channel = async_to_sync(self.layer.new_channel)()
        async_to_sync(self.layer.group_add)(self.group, self.channel)
        return [message["event"] for message in messages]

    def close(self) -> None:
        async_to_sync(self.layer.group_discard)(self.group, self.channel)


def job_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``data`` of each ``job_progress`` envelope, after checking the envelope itself."""
    found = []
    for event in events:
        assert set(event) == {"type", "timestamp", "data"}, event
        assert TIMESTAMP.match(event["timestamp"]), event["timestamp"]
        if event["type"] == "job_progress":
            found.append(event["data"])
    return found
