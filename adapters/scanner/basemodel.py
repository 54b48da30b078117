"""Base model family and label detection (SPEC 6.6.5)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FAMILY_LABELS = {
    "sd1": "SD 1.5",
    "sd2": "SD 2.x",
    "sdxl": "SDXL 1.0",
    "sd3": "SD 3",
    "flux1": "Flux.1",
    "flux2": "Flux.2",
    "chroma": "Chroma",
    "lumina2": "Lumina 2",
    "hunyuan": "Hunyuan",
    "cascade": "Stable Cascade",
}

_LABEL_PREFIXES = (
    ("sd 1", "sd1"),
    ("sd 2", "sd2"),
    ("sdxl", "sdxl"),
    ("pony", "sdxl"),
    ("illustrious", "sdxl"),
    ("noobai", "sdxl"),
    ("sd 3", "sd3"),
    ("flux.1", "flux1"),
    ("flux.2", "flux2"),
    ("chroma", "chroma"),
    ("lumina", "lumina2"),
    ("hunyuan", "hunyuan"),
    ("stable cascade", "cascade"),
)
_A1111_VERSIONS = {"sd1": "sd1", "sd2": "sd2", "sdxl": "sdxl"}
_KOHYA_PREFIXES = (
    ("sd_v1", "sd1"),
    ("sd1", "sd1"),
    ("sd_v2", "sd2"),
    ("sd2", "sd2"),
    ("sdxl", "sdxl"),
    ("sd3", "sd3"),
    ("flux2", "flux2"),
    ("flux.2", "flux2"),
    ("flux", "flux1"),
    ("chroma", "chroma"),
    ("lumina", "lumina2"),
    ("hunyuan", "hunyuan"),
    ("stable_cascade", "cascade"),
)
_MODELSPEC_PREFIXES = (
    ("stable-diffusion-v1", "sd1"),
    ("stable-diffusion-v2", "sd2"),
    ("stable-diffusion-xl", "sdxl"),
    ("stable-diffusion-3", "sd3"),
    ("flux-1", "flux1"),
    ("flux-2", "flux2"),
    ("chroma", "chroma"),
    ("lumina", "lumina2"),
    ("hunyuan", "hunyuan"),
)
_SDXL_NAME = re.compile(r"sdxl|pony|illustrious|_xl|-xl|xl_")
_SD1_NAME = re.compile(r"sd15|sd1\.5|sd_1\.5")


@dataclass(frozen=True)
class BaseModel:
    family: str
    label: str | None


def family_from_label(label: str | None) -> str | None:
    text = (label or "").strip().lower()
    if not text:
        return None
    for prefix, family in _LABEL_PREFIXES:
        if text.startswith(prefix):
            return family
    return "other"


def _by_prefix(value: Any, table: tuple[tuple[str, str], ...]) -> str | None:
    text = str(value).strip().lower() if isinstance(value, str) else ""
    for prefix, family in table:
        if text.startswith(prefix):
            return family
    return None


def _from_a1111(version: str | None) -> str | None:
    return _A1111_VERSIONS.get((version or "").strip().lower())


def _from_kohya_flags(metadata: dict[str, Any]) -> str | None:
    if str(metadata.get("ss_v2", "")).strip() == "True":
        return "sd2"
    model_name = str(metadata.get("ss_sd_model_name", "")).lower()
    if "xl" in model_name:
        return "sdxl"
    if "v1-5" in model_name or "1.5" in model_name:
        return "sd1"
    return None


def _from_file_name(file_name: str) -> str | None:
    lowered = file_name.lower()
    if _SDXL_NAME.search(lowered):
        return "sdxl"
    if "flux" in lowered:
        return "flux1"
    if _SD1_NAME.search(lowered):
        return "sd1"
    return None


def detect_base_model(
    *,
    metadata: dict[str, Any] | None,
    file_name: str,
    ecosystem_label: str | None = None,
    a1111_sd_version: str | None = None,
) -> BaseModel:
    """The first source yielding a family wins; the label is the ecosystem label when given."""
    header = metadata or {}
    sources: tuple[Callable[[], str | None], ...] = (
        lambda: family_from_label(ecosystem_label),
        lambda: _from_a1111(a1111_sd_version),
        lambda: _by_prefix(header.get("ss_base_model_version"), _KOHYA_PREFIXES),
        lambda: _by_prefix(header.get("modelspec.architecture"), _MODELSPEC_PREFIXES),
        lambda: _from_kohya_flags(header),
        lambda: _from_file_name(file_name),
    )
    family = next((found for source in sources if (found := source()) is not None), "unknown")
    label = (ecosystem_label or "").strip()[:64] or FAMILY_LABELS.get(family)
    return BaseModel(family=family, label=label)
