"""Generation jobs (SPEC 5.5.2, 5.5.3): creation with their effective parameters and adapter links, the
``SDNextGenerationResult`` read from a job row, and the wait of an immediate generation.

The job row is the source of truth: nothing here calls SDNext. Jobs are run by ``deliveries.run_delivery``.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import F, Prefetch, QuerySet
from django.db.models.functions import Coalesce
from rest_framework.exceptions import ValidationError

from adapters.composition import Composition, prompt_compose_request
from deliveries.events import result_images
from deliveries.models import PROMPT_MAX_LENGTH, DeliveryJob, DeliveryKind, DeliveryMode
from deliveries.representation import with_links
from deliveries.services import COMPOSED_PROMPT_TOO_LONG, AdapterLink, delivery_job_create, links_from_composition
from generation.models import GenerationResult
from loraforge.media import media_path
from loraforge.models.jobs import ACTIVE_STATUSES, JobStatus
from loraforge.off_thread import in_own_connection

BASE64_MAX_BYTES = 64 * 1024 * 1024
BASE64_TOO_LARGE = "Images too large for base64; returned URLs"
IMAGES_UNREADABLE = "Images could not be read; returned URLs"
NO_ACTIVE_ADAPTERS = "No active adapters found"
POLL_INTERVAL = 0.25


@dataclass(frozen=True)
class GenerationOptions:
    """The generation query parameters (SPEC 5.1)."""

    backend: str
    mode: str
    save_images: bool
    return_format: str

    @classmethod
    def from_query(cls, data: Mapping[str, Any]) -> GenerationOptions:
        return cls(
            backend=data["backend"],
            mode=data["mode"],
            save_images=data["save_images"],
            return_format=data["return_format"],
        )


# --- creation ------------------------------------------------------------------------------------


def generation_job_create(
    *,
    params: Mapping[str, Any],
    options: GenerationOptions,
    created_via: str,
    links: Sequence[AdapterLink] | None = None,
) -> DeliveryJob:
    """A ``pending`` generation job for ``params`` (validated GenerationParams; their prompt is the job prompt),
    queued once committed. 400 for an unknown or disabled backend, 503 when none is enabled or the task queue
    is down. Without ``links`` the adapters named by ``<lora:…>`` tags of the prompt are linked."""
    generation_params = dict(params)
    job_params = {
        "generation_params": generation_params,
        "mode": options.mode,
        "save_images": options.save_images,
        "return_format": options.return_format,
        "backend": options.backend,
    }
    return delivery_job_create(
        mode=DeliveryMode.SDNEXT,
        prompt=generation_params["prompt"],
        params=job_params,
        created_via=created_via,
        requested_backend=options.backend,
        links=links,
    )


def generation_compose(*, compose_request: Mapping[str, Any]) -> Composition:
    """The composition of ``compose-and-generate``; 400 when it has no tokens or is too long for a job."""
    composition = prompt_compose_request(compose_request)
    if not composition.tokens:
        raise ValidationError({"non_field_errors": [NO_ACTIVE_ADAPTERS]})
    if len(composition.prompt) > PROMPT_MAX_LENGTH:
        raise ValidationError({"non_field_errors": [COMPOSED_PROMPT_TOO_LONG]})
    return composition


def composed_generation_create(
    *, composition: Composition, params: Mapping[str, Any], options: GenerationOptions, created_via: str
) -> DeliveryJob:
    """A generation of the composed prompt, linking the composed adapters with their weights."""
    return generation_job_create(
        params={**params, "prompt": composition.prompt},
        options=options,
        created_via=created_via,
        links=links_from_composition(composition.adapters),
    )


def composition_summary(composition: Composition) -> dict[str, Any]:
    return {
        "prompt": composition.prompt,
        "tokens": composition.tokens,
        "triggers": composition.triggers,
        "warnings": composition.warnings,
    }


# --- reads ---------------------------------------------------------------------------------------


def generation_jobs() -> QuerySet[DeliveryJob]:
    return DeliveryJob.objects.filter(kind=DeliveryKind.GENERATION)


def generation_job_by_id(pk: str | uuid.UUID) -> DeliveryJob | None:
    return generation_jobs().filter(pk=pk).first()


def generation_job_detail(pk: str | uuid.UUID) -> DeliveryJob | None:
    """The job with its adapter links and its stored images (whose ``job`` is this instance)."""
    results = Prefetch("results", queryset=GenerationResult.objects.order_by("index"))
    return with_links(generation_jobs()).prefetch_related(results).filter(pk=pk).first()


def generation_jobs_active(*, limit: int) -> list[DeliveryJob]:
    """``pending``/``running`` generation jobs, most recently started (or created) first."""
    return list(
        generation_jobs()
        .filter(status__in=ACTIVE_STATUSES)
        .order_by(Coalesce("started_at", "created_at").desc(), F("created_at").desc(), F("id").desc())[:limit]
    )


def _result_dict(job: DeliveryJob) -> dict[str, Any]:
    return job.result if isinstance(job.result, dict) else {}


def _stored_files(job: DeliveryJob) -> list[GenerationResult]:
    return list(GenerationResult.objects.filter(job=job).order_by("index"))


def _base64_images(rows: list[GenerationResult]) -> tuple[list[str] | None, str | None]:
    """Base64 of the stored files, or ``None`` with the warning explaining why URLs are returned instead."""
    paths = [media_path(row.file) for row in rows]
    try:
        if any(path is None for path in paths):
            raise OSError("outside the media root")
        if sum(path.stat().st_size for path in paths if path is not None) > BASE64_MAX_BYTES:
            return None, BASE64_TOO_LARGE
        return [base64.b64encode(path.read_bytes()).decode("ascii") for path in paths if path is not None], None
    except OSError:
        return None, IMAGES_UNREADABLE


def _images(job: DeliveryJob, return_format: str) -> tuple[list[str] | None, list[str]]:
    """``images`` in the requested format (null until the job succeeded) and warnings about the format."""
    if job.status != JobStatus.SUCCEEDED:
        return None, []
    if return_format == "file_path":
        return [row.file for row in _stored_files(job)], []
    if return_format == "base64":
        encoded, warning = _base64_images(_stored_files(job))
        if encoded is not None:
            return encoded, []
        return result_images(job), [warning] if warning else []
    return result_images(job), []


def generation_result_payload(job: DeliveryJob, *, return_format: str = "url") -> dict[str, Any]:
    """The ``SDNextGenerationResult`` of a job row (SPEC 5.1)."""
    result = _result_dict(job)
    images, format_warnings = _images(job, return_format)
    warnings = result.get("warnings")
    return {
        "job_id": str(job.pk),
        "status": job.normalised_status,
        "images": images,
        "progress": job.progress,
        "progress_percent": job.progress_percent,
        "current_step": job.current_step,
        "total_steps": job.total_steps,
        "eta_seconds": job.eta_seconds,
        "error_message": job.error,
        "error_code": job.error_code,
        "generation_info": result.get("generation_info"),
        "warnings": [*(warnings if isinstance(warnings, list) else []), *format_warnings],
        "backend": job.backend_name,
    }


# --- the wait of an immediate generation ---------------------------------------------------------------


async def generation_job_wait(job: DeliveryJob, *, timeout: float, interval: float = POLL_INTERVAL) -> DeliveryJob:
    """Poll the row until the job is terminal or ``timeout`` seconds passed, without holding a thread: the
    event loop sleeps between reads. A job that vanished (deleted) ends the wait with its last known state."""
    deadline = time.monotonic() + timeout
    current = job
    while not current.is_terminal:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        await asyncio.sleep(min(interval, remaining))
        fresh = await in_own_connection(generation_job_by_id)(job.pk)
        if fresh is None:
            break
        current = fresh
    return current


async def generation_result_payload_async(job: DeliveryJob, *, return_format: str) -> dict[str, Any]:
    return await in_own_connection(generation_result_payload)(job, return_format=return_format)
