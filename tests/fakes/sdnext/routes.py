"""The /sdapi/v1 routes: each takes the fake and the request and returns (status, JSON body or None)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import protocol
from .generation import VERSION, Job, Runner, draw_seeds, info_string, resolve_loras

if TYPE_CHECKING:
    from .server import FakeSDNext, RecordedRequest

Reply = tuple[int, Any]
Handler = Callable[["FakeSDNext", "RecordedRequest"], Reply]


def _flag(value: str | None) -> bool:
    return (value or "").lower() in {"1", "true", "yes", "on"}


def progress(fake: FakeSDNext, request: RecordedRequest) -> Reply:
    skip = _flag(request.query.get("skip_current_image"))
    return 200, fake.state.progress_body(skip_current_image=skip)


def interrupt(fake: FakeSDNext, request: RecordedRequest) -> Reply:
    fake.interrupts += 1
    fake.state.update(interrupted=True)
    fake.wake.set()
    return 204, None


def skip(fake: FakeSDNext, request: RecordedRequest) -> Reply:
    fake.skips += 1
    fake.state.update(skipped=True)
    fake.wake.set()
    return 204, None


def status(fake: FakeSDNext, request: RecordedRequest) -> Reply:
    return 200, fake.state.status_body()


def version(fake: FakeSDNext, request: RecordedRequest) -> Reply:
    return 200, dict(VERSION)


def loras(fake: FakeSDNext, request: RecordedRequest) -> Reply:
    return 200, copy.deepcopy(fake.loras)


def lora(fake: FakeSDNext, request: RecordedRequest) -> Reply:
    name = request.query.get("lora")
    if name is None:
        return 422, {"detail": [{"type": "missing", "loc": ["query", "lora"], "msg": "Field required", "input": None}]}
    for entry in fake.loras:
        if entry["name"] == name:
            detail = {"shorthash": "", "hash": "", "filename": entry["path"], "fullname": entry["name"]}
            return 200, detail | {"is_safetensors": True, "sd_version": "xl"} | copy.deepcopy(entry)
    return 404, protocol.envelope(404, f"Lora '{name}' not found")


def refresh_loras(fake: FakeSDNext, request: RecordedRequest) -> Reply:
    return 200, {entry["name"]: copy.deepcopy(entry) for entry in fake.loras}


def loaded_loras(fake: FakeSDNext, request: RecordedRequest) -> Reply:
    return 200, list(fake.loaded_loras)


def samplers(fake: FakeSDNext, request: RecordedRequest) -> Reply:
    return 200, [{"name": name, "options": {}} for name in fake.samplers]


def sd_models(fake: FakeSDNext, request: RecordedRequest) -> Reply:
    model = fake.options["sd_model_checkpoint"]
    filename = f"/models/Stable-diffusion/{model}.safetensors"
    item = {"title": model, "model_name": model, "filename": filename, "type": "safetensors"}
    return 200, [item | {"sha256": None, "hash": None, "config": None}]


def get_options(fake: FakeSDNext, request: RecordedRequest) -> Reply:
    return 200, dict(fake.options)


def post_options(fake: FakeSDNext, request: RecordedRequest) -> Reply:
    body = request.body if isinstance(request.body, dict) else {}
    updated = []
    with fake.generation_lock:  # option changes (model reloads) wait for a running job
        for key, value in body.items():
            changed = key in fake.options and fake.options[key] != value
            if changed:
                fake.options[key] = value
            updated.append({key: changed})
    return 200, {"updated": updated}


def memory(fake: FakeSDNext, request: RecordedRequest) -> Reply:
    ram = {"free": 8.0 * 2**30, "used": 8.0 * 2**30, "total": 16.0 * 2**30}
    return 200, {"ram": ram, "cuda": {"error": "unavailable"}}


def _canonical_sampler(fake: FakeSDNext, name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return None
    if name.lower() == "default":
        return "Default"
    return next((known for known in fake.samplers if known.lower() == name.lower()), None)


def txt2img(fake: FakeSDNext, request: RecordedRequest) -> Reply:
    params, errors = protocol.validate_txt2img(request.body or {})
    if errors:
        return 422, {"detail": errors}
    sampler = _canonical_sampler(fake, params["sampler_name"])
    if sampler is None:
        return 404, protocol.sampler_not_found()
    params["width"] = max(8, params["width"] // 8 * 8)
    params["height"] = max(8, params["height"] // 8 * 8)
    with fake.generation_lock:
        return _generate(fake, params, sampler)


def _generate(fake: FakeSDNext, params: dict[str, Any], sampler: str) -> Reply:
    checkpoint = params["sd_model_checkpoint"]
    if checkpoint and checkpoint != fake.options["sd_model_checkpoint"]:
        return 200, {"images": [], "parameters": params, "info": ""}
    multiplier = params["extra_networks_default_multiplier"] or fake.options["extra_networks_default_multiplier"]
    names = resolve_loras(params["prompt"], fake.loras, multiplier)
    seeds, subseeds = draw_seeds(params)
    model = str(fake.options["sd_model_checkpoint"])
    job = Job(params, sampler, model, names, str(fake.options["samples_format"]))
    job.seeds = seeds
    changed = names != fake.loaded_loras
    runner = Runner(fake.state, fake.steps_delay, fake.wake, fake.stopping, lambda: fake.fault == "hang")
    runner.run(job, lora_changed=changed)
    fake.loaded_loras = names
    return 200, {"images": job.images, "parameters": params, "info": info_string(job, subseeds, "f4ke5d1a2b")}


ROUTES: dict[str, dict[str, Handler]] = {
    "/sdapi/v1/txt2img": {"POST": txt2img},
    "/sdapi/v1/progress": {"GET": progress},
    "/sdapi/v1/interrupt": {"POST": interrupt},
    "/sdapi/v1/skip": {"POST": skip},
    "/sdapi/v1/status": {"GET": status},
    "/sdapi/v1/version": {"GET": version},
    "/sdapi/v1/loras": {"GET": loras},
    "/sdapi/v1/lora": {"GET": lora},
    "/sdapi/v1/refresh-loras": {"POST": refresh_loras},
    "/sdapi/v1/loaded-loras": {"GET": loaded_loras},
    "/sdapi/v1/samplers": {"GET": samplers},
    "/sdapi/v1/sd-models": {"GET": sd_models},
    "/sdapi/v1/options": {"GET": get_options, "POST": post_options},
    "/sdapi/v1/memory": {"GET": memory},
}
