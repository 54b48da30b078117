"""The txt2img request body (SPEC 6.3.2): exactly these keys, GenerationParams defaults applied."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deliveries.models import DeliveryJob
from deliveries.serializers import generation_defaults


def generation_params(job: DeliveryJob) -> dict[str, Any]:
    """The job's stored GenerationParams (``params.generation_params``), ``{}`` when absent."""
    params = job.params if isinstance(job.params, dict) else {}
    stored = params.get("generation_params")
    return dict(stored) if isinstance(stored, dict) else {}


def _override_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    overrides = dict(params.get("override_settings") or {})
    checkpoint = params.get("checkpoint")
    if checkpoint:
        overrides["sd_model_checkpoint"] = checkpoint
    return overrides


def txt2img_payload(prompt: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The body of ``POST /sdapi/v1/txt2img``. Never the top-level ``sd_model_checkpoint`` (it would switch
    SDNext's model permanently): a checkpoint goes into ``override_settings``, restored afterwards."""
    payload: dict[str, Any] = {"prompt": prompt, "negative_prompt": params.get("negative_prompt") or ""}
    for key, default in generation_defaults().items():
        value = params.get(key)
        payload[key] = default if value is None else value
    if params.get("denoising_strength") is not None:
        payload["denoising_strength"] = params["denoising_strength"]
    overrides = _override_settings(params)
    if overrides:
        payload["override_settings"] = overrides
        payload["override_settings_restore_afterwards"] = True
    payload["send_images"] = True
    payload["save_images"] = False
    return payload


def job_payload(job: DeliveryJob) -> dict[str, Any]:
    return txt2img_payload(job.prompt, generation_params(job))
