"""An embeddings job followed over the progress WebSocket of a real server (SPEC 5.6, 6.5): uvicorn with the
embedded worker, the job queued over HTTP, its ``job_progress`` events read by a WebSocket client."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from loraforge.api_keys import api_key_create
from loraforge.models import BackgroundJob
from recommendations.models import AdapterEmbedding
from tests.factories import AdapterFactory
from tests.processes import ProcessSet, server_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
TERMINAL = ("succeeded", "failed", "cancelled")


async def follow_embeddings(ws_url: str, base_url: str, key: str) -> tuple[str, list[dict[str, Any]]]:
    """Subscribe to all jobs, queue an embeddings job over HTTP, collect its events until it ends."""
    import websockets

    async with websockets.connect(ws_url, open_timeout=30) as socket:
        assert json.loads(await asyncio.wait_for(socket.recv(), 30))["type"] == "connected"
        await socket.send(json.dumps({"type": "subscribe", "job_ids": None}))
        assert json.loads(await asyncio.wait_for(socket.recv(), 30))["type"] == "subscription_confirmed"
        response = await asyncio.to_thread(
            requests.post,
            f"{base_url}/api/v1/recommendations/embeddings/compute",
            json={"batch_size": 2},
            headers={"X-API-Key": key},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        events: list[dict[str, Any]] = []
        while not events or events[-1]["data"]["status"] not in TERMINAL:
            event = json.loads(await asyncio.wait_for(socket.recv(), 120))  # the worker loads the model first
            if event["type"] == "job_progress" and event["data"]["job_id"] == job_id:
                events.append(event)
    return job_id, events


def test_an_embeddings_job_is_followed_live_over_a_real_server(tmp_path: Path):
    adapters = [AdapterFactory(description=f"A style of painting number {index}") for index in range(5)]
    key = api_key_create(name="socket").plain_key
    env = server_env(tmp_path, LORAFORGE_EMBEDDING_DEVICE="cpu")
    with ProcessSet(tmp_path / "logs") as procs:
        _web, base_url = procs.start_web(env)
        ws_url = base_url.replace("http://", "ws://") + f"/api/v1/ws/progress?api_key={key}"
        job_id, events = asyncio.run(follow_embeddings(ws_url, base_url, key))

    data = [event["data"] for event in events]
    assert {item["kind"] for item in data} == {"embeddings"}
    assert data[0]["status"] in ("pending", "running")
    assert "running" in [item["status"] for item in data]
    final = data[-1]
    assert final["status"] == "succeeded", final
    assert final["progress"] == 1.0
    assert final["result"]["processed_count"] == len(adapters)
    assert final["result"]["semantic_available"] is True
    assert final["result"]["error_count"] == 0
    job = BackgroundJob.objects.get(pk=job_id)
    assert (job.status, job.result) == ("succeeded", final["result"])
    assert AdapterEmbedding.objects.count() == len(adapters)
