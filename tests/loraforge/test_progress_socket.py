"""The progress WebSocket (SPEC 6.5) with background jobs: snapshots on subscribe, live ``job_progress``
events, and a whole scan followed over a real server."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from asgiref.sync import async_to_sync, sync_to_async
from asgiref.testing import ApplicationCommunicator

from loraforge.api_keys import api_key_create
from loraforge.jobs.background import job_event_data, job_publish, job_start
from loraforge.models import BackgroundJob
from loraforge.off_thread import in_own_connection
from tests.lora_files import write_safetensors
from tests.processes import ProcessSet, server_env

TIMEOUT = 5


class WebsocketCommunicator(ApplicationCommunicator):
    """Channels' ``WebsocketCommunicator`` in a few lines (importing ``channels.testing`` needs daphne)."""

    def __init__(self, path: str, query: str) -> None:
        from loraforge.asgi import application

        scope = {"type": "websocket", "path": path, "query_string": query.encode(), "headers": [], "subprotocols": []}
        super().__init__(application, scope)

    async def connect(self) -> bool:
        await self.send_input({"type": "websocket.connect"})
        return bool((await self.receive_output(TIMEOUT))["type"] == "websocket.accept")

    async def send_json_to(self, data: Any) -> None:
        await self.send_input({"type": "websocket.receive", "text": json.dumps(data)})

    async def receive_json_from(self, timeout: float = TIMEOUT) -> Any:
        return json.loads((await self.receive_output(timeout))["text"])

    async def disconnect(self) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.wait(TIMEOUT)


async def connect(key: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator("/api/v1/ws/progress", f"api_key={key}")
    assert await communicator.connect()
    assert (await communicator.receive_json_from(TIMEOUT))["type"] == "connected"
    return communicator


async def subscribe(communicator: WebsocketCommunicator, job_ids: list[str] | None) -> dict[str, Any]:
    await communicator.send_json_to({"type": "subscribe", "job_ids": job_ids})
    confirmed = await communicator.receive_json_from(TIMEOUT)
    assert confirmed["type"] == "subscription_confirmed"
    return confirmed


async def received(communicator: WebsocketCommunicator) -> list[dict[str, Any]]:
    events = []
    while not await communicator.receive_nothing(0.2):
        events.append(await communicator.receive_json_from(TIMEOUT))
    return events


@sync_to_async
def make_job(**fields: Any) -> BackgroundJob:
    return BackgroundJob.objects.create(kind="scan", **fields)


@sync_to_async
def make_key() -> str:
    return api_key_create(name="socket").plain_key


async def _test_subscribing_to_a_job_sends_its_snapshot_after_the_confirmation() -> None:
    job = await make_job(status="running", progress=0.5, message="Hashing a.safetensors (1/2)")
    communicator = await connect(await make_key())
    await subscribe(communicator, [str(job.pk)])
    [snapshot] = await received(communicator)
    assert snapshot == {
        "type": "job_progress",
        "timestamp": snapshot["timestamp"],
        "data": {
            "job_id": str(job.pk),
            "kind": "scan",
            "status": "running",
            "progress": 0.5,
            "message": "Hashing a.safetensors (1/2)",
            "result": None,
            "error": None,
            "snapshot": True,
        },
    }
    await subscribe(communicator, [str(job.pk)])  # already subscribed: no second snapshot
    assert await received(communicator) == []
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
def test_subscribing_to_a_job_sends_its_snapshot_after_the_confirmation():
    async_to_sync(_test_subscribing_to_a_job_sends_its_snapshot_after_the_confirmation)()


async def _test_snapshot_of_a_finished_scan_carries_its_report_without_items() -> None:
    result = {"created": 1, "items": [{"path": "/l/a.safetensors"}], "items_truncated": False}
    job = await make_job(status="succeeded", progress=1.0, result=result)
    communicator = await connect(await make_key())
    await subscribe(communicator, [str(job.pk)])
    [snapshot] = await received(communicator)
    assert snapshot["data"]["result"] == {"created": 1}
    assert snapshot["data"]["snapshot"] is True
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
def test_snapshot_of_a_finished_scan_carries_its_report_without_items():
    async_to_sync(_test_snapshot_of_a_finished_scan_carries_its_report_without_items)()


async def _test_unknown_ids_are_accepted_without_a_snapshot() -> None:
    communicator = await connect(await make_key())
    confirmed = await subscribe(communicator, ["5d6e7f80-9a1b-4c2d-8e3f-4a5b6c7d8e77"])
    assert confirmed["data"] == {"job_ids": ["5d6e7f80-9a1b-4c2d-8e3f-4a5b6c7d8e77"], "all": False}
    assert await received(communicator) == []
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
def test_unknown_ids_are_accepted_without_a_snapshot():
    async_to_sync(_test_unknown_ids_are_accepted_without_a_snapshot)()


async def _test_subscribing_to_all_sends_snapshots_of_the_active_jobs() -> None:
    pending = await make_job(status="pending")
    running = await make_job(status="running")
    await make_job(status="succeeded")
    communicator = await connect(await make_key())
    await subscribe(communicator, None)
    events = await received(communicator)
    assert {event["data"]["job_id"] for event in events} == {str(pending.pk), str(running.pk)}
    assert all(event["data"]["snapshot"] for event in events)
    await subscribe(communicator, None)  # already subscribed to all
    assert await received(communicator) == []
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
def test_subscribing_to_all_sends_snapshots_of_the_active_jobs():
    async_to_sync(_test_subscribing_to_all_sends_snapshots_of_the_active_jobs)()


async def _test_live_events_follow_the_snapshot() -> None:
    job = await make_job(status="pending")
    communicator = await connect(await make_key())
    await subscribe(communicator, [str(job.pk)])
    [snapshot] = await received(communicator)
    assert snapshot["data"]["status"] == "pending"
    assert await sync_to_async(job_start)(job)
    [live] = await received(communicator)
    assert live["data"] == {**job_event_data(job), "snapshot": False}
    assert live["data"]["status"] == "running"
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
def test_live_events_follow_the_snapshot():
    async_to_sync(_test_live_events_follow_the_snapshot)()


def hold_snapshot_reads(monkeypatch: Any) -> tuple[threading.Event, threading.Event]:
    """Every snapshot read sets ``reading`` and waits for ``release`` (at most TIMEOUT): a slow database."""
    import loraforge.jobs.snapshots

    reading, release = threading.Event(), threading.Event()
    read_snapshots = loraforge.jobs.snapshots.job_snapshots

    def held_read(job_ids: Any) -> list[dict[str, Any]]:
        reading.set()
        release.wait(TIMEOUT)
        return read_snapshots(job_ids)

    monkeypatch.setattr(loraforge.jobs.snapshots, "job_snapshots", held_read)
    return reading, release


async def _test_a_job_created_after_the_confirmation_arrives_live_not_as_a_snapshot(monkeypatch) -> None:
    # A client creates a job once it has the confirmation. The snapshot read is held (a slow database) until the
    # confirmation has come, or for good when the server waits for the read first: either way the new job must
    # reach the client live, never as a snapshot of the subscription.
    reading, release = hold_snapshot_reads(monkeypatch)
    communicator = await connect(await make_key())
    await communicator.send_json_to({"type": "subscribe", "job_ids": None})
    assert await asyncio.to_thread(reading.wait, TIMEOUT)
    if await communicator.receive_nothing(0.3):
        release.set()
    events = [await communicator.receive_json_from()]
    assert events[0]["type"] == "subscription_confirmed"
    job = await in_own_connection(BackgroundJob.objects.create)(kind="scan", status="pending")
    await in_own_connection(job_publish)(job)
    release.set()
    events += await received(communicator)
    assert [(event["type"], event["data"].get("snapshot")) for event in events] == [
        ("subscription_confirmed", None),
        ("job_progress", False),
    ]
    assert events[1]["data"]["job_id"] == str(job.pk)
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
def test_a_job_created_after_the_confirmation_arrives_live_not_as_a_snapshot(monkeypatch):
    async_to_sync(_test_a_job_created_after_the_confirmation_arrives_live_not_as_a_snapshot)(monkeypatch)


async def _test_an_event_published_during_the_subscription_follows_its_snapshot(monkeypatch) -> None:
    job = await make_job(status="pending")
    reading, release = hold_snapshot_reads(monkeypatch)
    communicator = await connect(await make_key())
    await communicator.send_json_to({"type": "subscribe", "job_ids": [str(job.pk)]})
    assert await asyncio.to_thread(reading.wait, TIMEOUT)
    assert await in_own_connection(job_start)(job)  # published while the read is held
    release.set()
    events = await received(communicator)
    assert [(event["type"], event["data"].get("status"), event["data"].get("snapshot")) for event in events] == [
        ("subscription_confirmed", None, None),
        ("job_progress", "running", True),
        ("job_progress", "running", False),
    ]
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
def test_an_event_published_during_the_subscription_follows_its_snapshot(monkeypatch):
    async_to_sync(_test_an_event_published_during_the_subscription_follows_its_snapshot)(monkeypatch)


# --- a scan followed over a real server -----------------------------------------------------------


async def follow_scan(ws_url: str, base_url: str, key: str) -> tuple[str, list[dict[str, Any]]]:
    """Subscribe to all jobs, start a scan over HTTP, collect its ``job_progress`` events until it ends."""
    import websockets

    async with websockets.connect(ws_url, open_timeout=30) as socket:
        assert json.loads(await asyncio.wait_for(socket.recv(), 30))["type"] == "connected"
        await socket.send(json.dumps({"type": "subscribe", "job_ids": None}))
        assert json.loads(await asyncio.wait_for(socket.recv(), 30))["type"] == "subscription_confirmed"
        response = await asyncio.to_thread(
            requests.post, f"{base_url}/api/v1/adapters/scan", json={}, headers={"X-API-Key": key}, timeout=30
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        events: list[dict[str, Any]] = []
        while not events or events[-1]["data"]["status"] not in ("succeeded", "failed", "cancelled"):
            event = json.loads(await asyncio.wait_for(socket.recv(), 60))
            if event["type"] == "job_progress" and event["data"]["job_id"] == job_id:
                events.append(event)
    return job_id, events


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_scan_is_followed_live_over_a_real_server(tmp_path: Path):
    lora_folder = tmp_path / "loras"
    for index in range(3):
        write_safetensors(lora_folder / f"style_{index}.safetensors", seed=index)
    key = api_key_create(name="e2e").plain_key
    env = server_env(tmp_path, LORAFORGE_LORA_DIRS=str(lora_folder))
    with ProcessSet(tmp_path / "logs") as procs:
        _web, base_url = procs.start_web(env)
        ws_url = base_url.replace("http://", "ws://") + f"/api/v1/ws/progress?api_key={key}"
        job_id, events = asyncio.run(follow_scan(ws_url, base_url, key))

    statuses = [event["data"]["status"] for event in events]
    assert statuses[0] in ("pending", "running")
    assert statuses[-1] == "succeeded", events[-1]
    final = events[-1]["data"]
    assert final["progress"] == 1.0
    assert final["result"]["created"] == 3
    assert final["result"]["files_seen"] == 3
    assert "items" not in final["result"]
    job = BackgroundJob.objects.get(pk=job_id)
    assert job.status == "succeeded"
    assert job.result is not None
    assert len(job.result["items"]) == 3
