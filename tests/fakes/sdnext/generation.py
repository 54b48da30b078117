"""What happens inside the generation lock: LoRA tags (§4), the phase sequence (§3.3), images and info (§3.1)."""

from __future__ import annotations

import base64
import io
import json
import os
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from PIL import Image, PngImagePlugin

from .state import ProgressState, timestamp

VERSION = {
    "app": "sd.next",
    "updated": "2026-07-23",
    "commit": "f4ke5d1",
    "branch": "master",
    "url": "https://github.com/vladmandic/sdnext/tree/master",
    "ui": "main",
    "kanvas": "main",
}
TAG = re.compile(r"<(\w+):([^>]+)>")
MAX_SEED = 4294967293
HANG_SECONDS = 3600.0
Hanging = Callable[[], bool]


def lora_keys(loras: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Resolution keys of §4: `name`, path relative to the LoRA dir without extension, natural stem."""
    parents = [os.path.dirname(str(entry.get("path", ""))) for entry in loras]
    root = os.path.commonpath(parents) if parents and all(parents) else ""
    keys: dict[str, dict[str, Any]] = {}
    for entry in loras:
        path = str(entry.get("path", ""))
        if path:
            relative = os.path.relpath(path, root) if root else path
            keys[str(PurePosixPath(relative.replace(os.sep, "/")).with_suffix(""))] = entry
            keys[PurePosixPath(path).stem] = entry
            keys[path] = entry
        keys[str(entry["name"])] = entry
    return keys


def _weight(text: str, default: float) -> float:
    try:
        return float(text.split("@")[0].split(",")[0].split(";")[0])
    except ValueError:
        return default


def resolve_loras(prompt: str, loras: list[dict[str, Any]], default_weight: float = 1.0) -> list[str]:
    """Names of the LoRAs the prompt's tags load; unknown names and zero weights are silently dropped."""
    keys = lora_keys(loras)
    names: list[str] = []
    for kind, args in TAG.findall(prompt):
        if kind != "lora":
            continue
        name, *rest = args.split(":")
        positional = [arg for arg in rest if "=" not in arg]
        named = dict(arg.split("=", 1) for arg in rest if "=" in arg)
        weight = _weight(positional[0], default_weight) if positional else default_weight
        te = _weight(named["te"], weight) if "te" in named else weight
        unet = _weight(named["unet"], te) if "unet" in named else te
        entry = keys.get(name)
        if entry is None or (te == 0 and unet == 0) or entry["name"] in names:
            continue
        names.append(str(entry["name"]))
    return names


def _quote(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if any(char in text for char in ",:\n") else text


def infotext(params: dict[str, Any], *, seed: int, sampler: str, model: str, loras: list[str]) -> str:
    fields: dict[str, Any] = {
        "Steps": params["steps"],
        "Size": f"{params['width']}x{params['height']}",
        "Sampler": sampler if sampler != "Default" else None,
        "Seed": seed,
        "CFG scale": params["cfg_scale"],
        "App": "SD.Next",
        "Version": VERSION["commit"],
        "Operations": "txt2img",
        "Model": model,
        "LoRA networks": ", ".join(loras) or None,
    }
    line = ", ".join(f"{key}: {_quote(value)}" for key, value in fields.items() if value not in (None, ""))
    negative = f"\nNegative prompt: {params['negative_prompt']}" if params["negative_prompt"] else ""
    return f"{params['prompt']}{negative}\n{line}"


def encode_image(size: tuple[int, int], colour: tuple[int, int, int], fmt: str, text: str = "") -> str:
    """A real solid-colour image in SDNext's samples_format (JPEG unless png), base64 without a prefix."""
    image = Image.new("RGB", size, colour)
    buffer = io.BytesIO()
    if fmt.lower() == "png":
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", text)
        image.save(buffer, format="PNG", pnginfo=info)
    else:
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + text.encode("utf-16-be")
        image.save(buffer, format="JPEG", quality=85, exif=exif.tobytes())
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _colour(seed: int) -> tuple[int, int, int]:
    return (seed & 0xFF, (seed >> 8) & 0xFF, (seed >> 16) & 0xFF)


@dataclass
class Job:
    """One txt2img request running under the lock."""

    params: dict[str, Any]
    sampler: str
    model: str
    loras: list[str]
    fmt: str
    seeds: list[int] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    infotexts: list[str] = field(default_factory=list)


class Runner:
    """Walks a job through SDNext's phases, advancing one sampling step every `delay` seconds."""

    def __init__(
        self, state: ProgressState, delay: float, wake: threading.Event, stopping: threading.Event, hanging: Hanging
    ) -> None:
        self.state = state
        self.hanging = hanging  # the "hang" fault: sampling stalls until interrupt, skip or stop
        self.delay = delay
        self.wake = wake  # set by interrupt, skip and stop so a sleeping step reacts at once
        self.stopping = stopping

    def _sleep(self, seconds: float) -> None:
        if not self.stopping.is_set() and self.wake.wait(seconds):
            self.wake.clear()

    def _phase(self, job: str) -> None:
        self.state.begin(job)
        self._sleep(self.delay)
        self.state.end()

    def _sample(self, job: Job, steps: int) -> bool:
        """The Inference phase; False when interrupted or skipped (the sampler callback checks each step)."""
        state = self.state
        state.update(job_count=1, sampling_steps=steps)
        state.begin("Inference")
        state.update(sampling_steps=steps)
        for step in range(1, steps + 1):
            self._sleep(HANG_SECONDS if self.hanging() else self.delay)
            if state.interrupted or state.skipped or self.stopping.is_set():
                state.end()
                return False
            preview = encode_image((8, 8), _colour(job.seeds[0] if job.seeds else 0), job.fmt)
            state.update(sampling_step=step, preview=preview)
        state.end()
        self._sleep(self.delay)  # "" 0/0 steps/steps: progress reads 1.0 between sampling and VAE decode
        state.update(job_no=1)
        return True

    def run(self, job: Job, *, lora_changed: bool) -> None:
        params = job.params
        state = self.state
        steps = max(1, params["steps"])
        batch = max(1, params["batch_size"])
        state.update(active=True)
        for phase in ("API-TXT", "Process"):
            state.begin(phase)
            self._sleep(self.delay)
        try:
            for iteration in range(max(1, params["n_iter"])):
                state.begin("Base")
                self._sleep(self.delay)
                if lora_changed and iteration == 0:
                    self._phase("LoRA")
                self._phase("TE Encode")
                finished = self._sample(job, steps)
                if self.stopping.is_set() or state.interrupted:
                    break
                if not finished:
                    continue
                self._phase("VAE Decode")
                self._encode(job, iteration, batch)
        finally:
            state.end()
            state.update(sampling_step=0, sampling_steps=0, job_no=0, active=False, preview=None)

    def _encode(self, job: Job, iteration: int, batch: int) -> None:
        size = (job.params["width"], job.params["height"])
        for index in range(iteration * batch, (iteration + 1) * batch):
            seed = job.seeds[index]
            text = infotext(job.params, seed=seed, sampler=job.sampler, model=job.model, loras=job.loras)
            job.infotexts.append(text)
            if job.params["send_images"]:
                job.images.append(encode_image(size, _colour(seed), job.fmt, text))


def draw_seeds(params: dict[str, Any]) -> tuple[list[int], list[int]]:
    count = max(1, params["batch_size"]) * max(1, params["n_iter"])
    seed = params["seed"] if params["seed"] not in (None, -1) else random.randint(0, MAX_SEED)
    subseed = params["subseed"] if params["subseed"] not in (None, -1) else random.randint(0, MAX_SEED)
    return [seed + i for i in range(count)], [subseed + i for i in range(count)]


def info_string(job: Job, subseeds: list[int], model_hash: str) -> str:
    params = job.params
    count = len(job.seeds)
    extra = {"LoRA networks": ", ".join(job.loras)} if job.loras else {}
    info = {
        "prompt": params["prompt"],
        "all_prompts": [params["prompt"]] * count,
        "negative_prompt": params["negative_prompt"],
        "all_negative_prompts": [params["negative_prompt"]] * count,
        "seed": job.seeds[0],
        "all_seeds": job.seeds,
        "subseed": subseeds[0],
        "all_subseeds": subseeds,
        "subseed_strength": params["subseed_strength"],
        "width": params["width"],
        "height": params["height"],
        "sampler_name": job.sampler,
        "cfg_scale": params["cfg_scale"],
        "cfg_end": params["cfg_end"] if params["cfg_end"] is not None and params["cfg_end"] < 1 else None,
        "steps": params["steps"],
        "batch_size": params["batch_size"],
        "clip_skip": params["clip_skip"],
        "denoising_strength": params["denoising_strength"],
        "detailer": False,
        "detailer_model": None,
        "sd_model_hash": model_hash,
        "seed_resize_from_w": params["seed_resize_from_w"],
        "seed_resize_from_h": params["seed_resize_from_h"],
        "extra_generation_params": extra,
        "index_of_first_image": 0,
        "infotexts": job.infotexts,
        "styles": params["styles"] or [],
        "job_timestamp": timestamp(),
    }
    return json.dumps(info)
