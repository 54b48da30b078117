"""Publishing across threads (SPEC 6.5): the embedded worker's threads publish to sockets served by the web
event loop, and every publish of a process reuses one event loop (and its channel-layer connections)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer

from loraforge import progress
from loraforge.channel_layers import ThreadSafeInMemoryChannelLayer


def _receiver(layer: InMemoryChannelLayer, channel: str) -> tuple[threading.Thread, list[Any], threading.Event]:
    """A loop in its own thread, idle except for one ``receive`` (nothing else would wake it)."""
    got: list[Any] = []
    done = threading.Event()

    def run() -> None:
        async def receive() -> None:
            got.append(await layer.receive(channel))
            done.set()

        loop = asyncio.new_event_loop()
        task = loop.create_task(receive())
        loop.run_until_complete(asyncio.wait([task], timeout=3))
        task.cancel()
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, got, done


def test_a_send_from_another_thread_wakes_the_receiving_loop():
    layer = ThreadSafeInMemoryChannelLayer()
    channel = async_to_sync(layer.new_channel)()
    thread, got, done = _receiver(layer, channel)
    while channel not in layer._receiver_loops:
        threading.Event().wait(0.01)
    async_to_sync(layer.send)(channel, {"type": "progress.event", "n": 1})
    assert done.wait(2), "the receiving loop was not woken"
    assert got == [{"type": "progress.event", "n": 1}]
    thread.join(5)


def test_a_receiver_whose_loop_is_gone_still_gets_queued_messages():
    layer = ThreadSafeInMemoryChannelLayer()
    channel = async_to_sync(layer.new_channel)()
    layer._receiver_loops[channel] = asyncio.new_event_loop()  # never running
    async_to_sync(layer.send)(channel, {"type": "x"})
    assert async_to_sync(layer.receive)(channel) == {"type": "x"}


def test_publishes_share_one_running_event_loop(monkeypatch):
    sent: list[tuple[str, asyncio.AbstractEventLoop]] = []

    class Layer:
        async def group_send(self, group: str, message: dict[str, Any]) -> None:
            sent.append((group, asyncio.get_running_loop()))

    monkeypatch.setattr("channels.layers.get_channel_layer", lambda: Layer())
    job = "5d6e7f80-9a1b-4c2d-8e3f-4a5b6c7d8e77"
    progress.publish(job, "progress_update", {"job_id": job})
    progress.publish(job, "progress_update", {"job_id": job})
    assert [group for group, _ in sent] == ["lf.jobs.all", f"lf.job.{job.replace('-', '')}"] * 2
    assert len({id(loop) for _, loop in sent}) == 1
    assert sent[0][1].is_running()


def test_a_failing_layer_never_fails_the_publisher(monkeypatch, caplog):
    class Down:
        async def group_send(self, group: str, message: dict[str, Any]) -> None:
            raise ConnectionError("Redis is down")

    monkeypatch.setattr("channels.layers.get_channel_layer", lambda: Down())
    progress.publish("5d6e7f80-9a1b-4c2d-8e3f-4a5b6c7d8e77", "progress_update", {})
    assert "Could not publish progress_update" in caplog.text
