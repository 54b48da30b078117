"""WebSocket events of delivery jobs (SPEC 6.5): ``generation_started``, ``progress_update`` and
``generation_complete`` for generations, ``job_progress`` (kind ``delivery``) for http/cli deliveries.

Every payload is built from the job row, so an event and a REST read of the same row agree. Publishing is
best effort (``loraforge.progress.publish`` never raises).
"""

from __future__ import annotations

from typing import Any

from deliveries.models import DeliveryJob
from loraforge.models.jobs import JobStatus
from loraforge.progress import JOB_PROGRESS, envelope, job_progress_data, publish

GENERATION_STARTED = "generation_started"
PROGRESS_UPDATE = "progress_update"
GENERATION_COMPLETE = "generation_complete"


def result_images(job: DeliveryJob) -> list[str]:
    result = job.result if isinstance(job.result, dict) else {}
    images = result.get("images") if job.status == JobStatus.SUCCEEDED else None
    return [str(url) for url in images] if isinstance(images, list) else []


def progress_update_data(job: DeliveryJob, *, snapshot: bool = False) -> dict[str, Any]:
    return {
        "job_id": str(job.pk),
        "progress": job.progress,
        "progress_percent": job.progress_percent,
        "status": job.normalised_status,
        "current_step": job.current_step,
        "total_steps": job.total_steps,
        "eta_seconds": job.eta_seconds,
        "message": job.message,
        "preview_image": None,
        "error_message": job.error,
        "snapshot": snapshot,
    }


def generation_complete_data(job: DeliveryJob, *, snapshot: bool = False) -> dict[str, Any]:
    result = job.result if isinstance(job.result, dict) else {}
    warnings = result.get("warnings")
    return {
        "job_id": str(job.pk),
        "status": job.normalised_status,
        "images": result_images(job),
        "error_message": job.error,
        "error_code": job.error_code,
        "total_duration": job.duration_seconds,
        "generation_info": result.get("generation_info"),
        "warnings": warnings if isinstance(warnings, list) else [],
        "snapshot": snapshot,
    }


def delivery_progress_data(job: DeliveryJob, *, snapshot: bool = False) -> dict[str, Any]:
    return job_progress_data(job, kind="delivery", snapshot=snapshot)


def generation_started_data(job: DeliveryJob, *, estimated_duration: float | None) -> dict[str, Any]:
    params = job.params if isinstance(job.params, dict) else {}
    return {
        "job_id": str(job.pk),
        "params": params.get("generation_params", {}),
        "backend": job.requested_backend,
        "estimated_duration": estimated_duration,
    }


# --- publishing ----------------------------------------------------------------------------------


def publish_started(job: DeliveryJob, *, estimated_duration: float | None = None) -> None:
    """After the creating transaction committed: ``generation_started`` or the first ``job_progress``."""
    if job.is_generation:
        publish(job.pk, GENERATION_STARTED, generation_started_data(job, estimated_duration=estimated_duration))
    else:
        publish(job.pk, JOB_PROGRESS, delivery_progress_data(job))


def publish_progress(job: DeliveryJob) -> None:
    """The job's current state (a progress or status change that is not terminal)."""
    if job.is_generation:
        publish(job.pk, PROGRESS_UPDATE, progress_update_data(job))
    else:
        publish(job.pk, JOB_PROGRESS, delivery_progress_data(job))


def publish_terminal(job: DeliveryJob) -> None:
    """Only whoever performed the terminal write calls this: the last ``progress_update``, then the one
    ``generation_complete`` (or the terminal ``job_progress`` of a delivery)."""
    if job.is_generation:
        publish(job.pk, PROGRESS_UPDATE, progress_update_data(job))
        publish(job.pk, GENERATION_COMPLETE, generation_complete_data(job))
    else:
        publish(job.pk, JOB_PROGRESS, delivery_progress_data(job))


# --- snapshots on subscribe --------------------------------------------------------------------


def job_snapshot_events(job: DeliveryJob) -> list[dict[str, Any]]:
    if not job.is_generation:
        return [envelope(JOB_PROGRESS, delivery_progress_data(job, snapshot=True))]
    events = [envelope(PROGRESS_UPDATE, progress_update_data(job, snapshot=True))]
    if job.is_terminal:
        events.append(envelope(GENERATION_COMPLETE, generation_complete_data(job, snapshot=True)))
    return events
