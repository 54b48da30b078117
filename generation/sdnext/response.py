"""Processing a 2xx txt2img answer (SPEC 6.3.4): the JSON body, ``info`` (a JSON string parsed again), grid
skipping, image decoding, seeds and infotexts, the stored ``generation_info`` and the warnings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from generation.sdnext.images import ImageData, decode_image
from generation.sdnext.outcomes import NO_DECODABLE_IMAGES, NO_IMAGES, Failure, invalid_response

INFO_MISSING = "SDNext returned no generation info"
INFO_LIMIT = 256 * 1024
DROPPED_INFO_KEYS = ("all_prompts", "all_negative_prompts", "infotexts")
LORA_NETWORKS = "LoRA networks"
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class ResultImage:
    index: int  # 0-based position after grid removal (the file name NNN)
    image: ImageData
    seed: int | None
    infotext: str


@dataclass
class ParsedResponse:
    images: list[ResultImage] = field(default_factory=list)
    generation_info: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    failure: Failure | None = None


def _loads(text: str | bytes) -> Any:
    """JSON with ``NaN``/``Infinity`` read as null (they could not be stored); None when unparsable."""
    try:
        return json.loads(text, parse_constant=lambda _name: None)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def parse_info(value: object) -> dict[str, Any]:
    """``info`` as SDNext sends it (a JSON string) or already decoded; ``{}`` when empty or unparsable."""
    parsed = _loads(value) if isinstance(value, str) and value.strip() else value
    return parsed if isinstance(parsed, dict) else {}


def _json_size(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8"))


def info_summary(info: dict[str, Any]) -> dict[str, Any]:
    """The job's ``generation_info``: info without the per-image lists, largest values dropped until it fits
    in 256 KiB; ``{}`` when SDNext sent none (SPEC 6.3.4)."""
    kept = {key: value for key, value in info.items() if key not in DROPPED_INFO_KEYS}
    while kept and _json_size(kept) > INFO_LIMIT:
        largest = max(kept, key=lambda key: _json_size(kept[key]))
        del kept[largest]
    return kept


def lora_warnings(info: dict[str, Any], loras: Sequence[tuple[str, float]]) -> list[str]:
    """A warning per linked LoRA with a non-zero weight that SDNext's "LoRA networks" does not list."""
    if not info:
        return []
    extra = info.get("extra_generation_params")
    networks = extra.get(LORA_NETWORKS) if isinstance(extra, dict) else None
    loaded = {name.strip() for name in networks.split(",")} if isinstance(networks, str) else set()
    warnings: list[str] = []
    for name, weight in loras:
        text = f"LoRA '{name}' was not loaded by SDNext"
        if weight != 0 and name not in loaded and text not in warnings:
            warnings.append(text)
    return warnings


def _int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and SEED_MIN <= value <= SEED_MAX:
        return value
    return None


def image_seed(info: dict[str, Any], index: int, requested: int | None) -> int | None:
    """``all_seeds[k]``, else ``seed + k``, else the requested seed when ≥ 0, else None."""
    seeds = info.get("all_seeds")
    if isinstance(seeds, list) and index < len(seeds) and _int(seeds[index]) is not None:
        return _int(seeds[index])
    seed = _int(info.get("seed"))
    if seed is not None:
        return _int(seed + index)
    return requested if requested is not None and requested >= 0 else None


def _infotext(info: dict[str, Any], response_index: int) -> str:
    texts = info.get("infotexts")
    if isinstance(texts, list) and response_index < len(texts) and isinstance(texts[response_index], str):
        return str(texts[response_index])
    return ""


def _first_image(info: dict[str, Any]) -> int:
    first = _int(info.get("index_of_first_image"))
    return first if first is not None and first > 0 else 0


def _decode_all(raw: list[Any], info: dict[str, Any], requested_seed: int | None) -> ParsedResponse:
    first = _first_image(info)
    parsed = ParsedResponse()
    for index, text in enumerate(raw[first:]):
        image = decode_image(text)
        if image is None:
            parsed.warnings.append(f"Image {index} could not be decoded")
            continue
        seed = image_seed(info, index, requested_seed)
        parsed.images.append(ResultImage(index, image, seed, _infotext(info, first + index)))
    if len(raw) <= first:  # nothing but a grid, or ``images: []``
        parsed.failure = Failure("no_images", NO_IMAGES)
    elif not parsed.images:
        parsed.failure = Failure("invalid_images", NO_DECODABLE_IMAGES)
    return parsed


def parse_txt2img(
    body: bytes, *, requested_seed: int | None = None, loras: Sequence[tuple[str, float]] = ()
) -> ParsedResponse:
    """The body of a 2xx answer; ``failure`` is set for an invalid body, no images or no decodable image."""
    document = _loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("images"), list):
        return ParsedResponse(failure=invalid_response())
    info = parse_info(document.get("info"))
    warnings = [] if info else [INFO_MISSING]
    warnings += lora_warnings(info, loras)
    parsed = _decode_all(document["images"], info, requested_seed)
    parsed.generation_info = info_summary(info)
    parsed.warnings = warnings + parsed.warnings
    return parsed
