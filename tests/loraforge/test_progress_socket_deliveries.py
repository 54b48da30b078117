"""The progress WebSocket with delivery jobs (SPEC 6.5): the exact event payloads, snapshots of generations
(``progress_update``, plus ``generation_complete`` once terminal) and of http/cli deliveries (``job_progress``),
and live events after a cancel."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.utils import timezone

from deliveries import events
from deliveries.models import DeliveryJob
from deliveries.services import delivery_job_cancel
from tests.loraforge.test_progress_socket import connect, make_key, received, subscribe

GENERATION_RESULT = {
    "status": "completed",
    "images": ["/media/generations/2026/11/26/x/000.jpg"],
    "generation_info": {"seed": 7},
    "warnings": ["LoRA 'ghost' was not loaded by SDNext"],
    "error_message": None,
    "error_code": None,
    "backend": "default",
}


def generation(**fields: Any) -> DeliveryJob:
    params = {"generation_params": {"prompt": "a cat", "steps": 20, "width": 512, "height": 512}, "mode": "deferred"}
    return DeliveryJob.objects.create(kind="generation", mode="sdnext", prompt="a cat", params=params, **fields)


# --- exact payloads -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_progress_update_payload_is_exact():
    job = generation(status="running", progress=0.45, current_step=9, total_steps=20, eta_seconds=3.1)
    assert events.progress_update_data(job) == {
        "job_id": str(job.pk),
        "progress": 0.45,
        "progress_percent": 45,
        "status": "processing",
        "current_step": 9,
        "total_steps": 20,
        "eta_seconds": 3.1,
        "message": "",
        "preview_image": None,
        "error_message": None,
        "snapshot": False,
    }


@pytest.mark.django_db
def test_generation_complete_payload_is_exact():
    started = timezone.now()
    job = generation(
        status="succeeded",
        progress=1.0,
        result=GENERATION_RESULT,
        started_at=started,
        finished_at=started + timedelta(seconds=4.2),
    )
    assert events.generation_complete_data(job, snapshot=True) == {
        "job_id": str(job.pk),
        "status": "completed",
        "images": GENERATION_RESULT["images"],
        "error_message": None,
        "error_code": None,
        "total_duration": 4.2,
        "generation_info": {"seed": 7},
        "warnings": GENERATION_RESULT["warnings"],
        "snapshot": True,
    }


@pytest.mark.django_db
def test_a_failed_generation_completes_without_images():
    job = generation(
        status="failed",
        error="SDNext returned no images (the model may not be loaded, or the generation was aborted)",
        error_code="no_images",
        result={**GENERATION_RESULT, "status": "failed", "images": ["/media/leftover.jpg"]},
    )
    data = events.generation_complete_data(job)
    assert (data["status"], data["images"], data["error_code"]) == ("failed", [], "no_images")
    assert data["total_duration"] is None


@pytest.mark.django_db
def test_generation_started_payload_carries_the_effective_params_and_the_requested_backend():
    job = generation(requested_backend="gpu-2")
    assert events.generation_started_data(job, estimated_duration=3.5) == {
        "job_id": str(job.pk),
        "params": {"prompt": "a cat", "steps": 20, "width": 512, "height": 512},
        "backend": "gpu-2",
        "estimated_duration": 3.5,
    }


@pytest.mark.django_db
def test_an_http_delivery_reports_job_progress_of_kind_delivery():
    job = DeliveryJob.objects.create(kind="delivery", mode="cli", prompt="a cat", status="succeeded", progress=1.0)
    job.result = {"status": "ok", "detail": "Prompt written to deliveries/cli/x.txt", "file_path": "x"}
    assert events.delivery_progress_data(job) == {
        "job_id": str(job.pk),
        "kind": "delivery",
        "status": "succeeded",
        "progress": 1.0,
        "message": "",
        "result": job.result,
        "error": None,
        "snapshot": False,
    }


# --- snapshots and live events over the consumer ---------------------------------------------------


async def _test_a_finished_generation_snapshots_its_update_then_its_completion() -> None:
    job = await sync_to_async(generation)(status="succeeded", progress=1.0, result=GENERATION_RESULT)
    communicator = await connect(await make_key())
    await subscribe(communicator, [str(job.pk)])
    snapshot = await received(communicator)
    assert [event["type"] for event in snapshot] == ["progress_update", "generation_complete"]
    assert all(event["data"]["snapshot"] is True for event in snapshot)
    assert snapshot[0]["data"]["status"] == "completed"
    assert snapshot[1]["data"]["images"] == GENERATION_RESULT["images"]
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
def test_a_finished_generation_snapshots_its_update_then_its_completion():
    async_to_sync(_test_a_finished_generation_snapshots_its_update_then_its_completion)()


async def _test_subscribing_to_all_includes_active_deliveries_and_not_finished_ones() -> None:
    queued = await sync_to_async(generation)()
    cli = await sync_to_async(DeliveryJob.objects.create)(kind="delivery", mode="cli", prompt="p", status="running")
    await sync_to_async(generation)(status="failed", error="x", error_code="no_images")
    communicator = await connect(await make_key())
    await subscribe(communicator, None)
    snapshot = {event["data"]["job_id"]: event for event in await received(communicator)}
    assert set(snapshot) == {str(queued.pk), str(cli.pk)}
    assert snapshot[str(queued.pk)]["type"] == "progress_update"
    assert snapshot[str(queued.pk)]["data"]["status"] == "queued"
    assert snapshot[str(cli.pk)]["type"] == "job_progress"
    assert snapshot[str(cli.pk)]["data"]["kind"] == "delivery"
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
def test_subscribing_to_all_includes_active_deliveries_and_not_finished_ones():
    async_to_sync(_test_subscribing_to_all_includes_active_deliveries_and_not_finished_ones)()


async def _test_cancelling_a_queued_generation_sends_the_final_update_then_the_completion() -> None:
    job = await sync_to_async(generation)()
    communicator = await connect(await make_key())
    await subscribe(communicator, [str(job.pk)])
    assert [event["data"]["snapshot"] for event in await received(communicator)] == [True]
    await sync_to_async(delivery_job_cancel)(job=job)
    live = await received(communicator)
    assert [event["type"] for event in live] == ["progress_update", "generation_complete"]
    assert live[0]["data"]["status"] == "cancelled"
    assert live[1]["data"] == {
        "job_id": str(job.pk),
        "status": "cancelled",
        "images": [],
        "error_message": "Cancelled by user",
        "error_code": "cancelled",
        "total_duration": None,
        "generation_info": None,
        "warnings": [],
        "snapshot": False,
    }
    await sync_to_async(delivery_job_cancel)(job=job)  # idempotent: no second completion
    assert await received(communicator) == []
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_queued_generation_sends_the_final_update_then_the_completion():
    async_to_sync(_test_cancelling_a_queued_generation_sends_the_final_update_then_the_completion)()
