"""Realistic sidecar documents for tests: Civitai version/model objects, Lora-Manager and A1111 metadata.

Each builder returns a fresh dict; keyword overrides replace top-level keys (``None`` values are kept, so a test
can write ``civitai_version(baseModel=None)``). ``write_json`` puts one next to a model file.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

DEFAULT_SHA256 = hashlib.sha256(b"celestial").hexdigest()


def civitai_file(
    *,
    name: str = "celestial_anime_v2.safetensors",
    sha256: str = DEFAULT_SHA256,
    autov3: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A ``files[]`` entry as Civitai writes it (upper-case hashes)."""
    hashes = {
        "AutoV1": "A1B2C3D4",
        "AutoV2": sha256[:10].upper(),
        "SHA256": sha256.upper(),
        "CRC32": "0BADF00D",
        "BLAKE3": "9F" * 32,
    }
    if autov3:
        hashes["AutoV3"] = autov3.upper()
    entry: dict[str, Any] = {
        "id": 301452,
        "sizeKB": 223084.2734375,
        "name": name,
        "type": "Model",
        "pickleScanResult": "Success",
        "virusScanResult": "Success",
        "metadata": {"format": "SafeTensor", "size": "full", "fp": "fp16"},
        "hashes": hashes,
        "primary": True,
        "downloadUrl": "https://civitai.com/api/download/models/298654",
    }
    entry.update(overrides)
    return entry


def civitai_version(**overrides: Any) -> dict[str, Any]:
    """A Civitai model-version object (``GET /model-versions/{id}``, what ``.civitai.info`` holds)."""
    version: dict[str, Any] = {
        "id": 298654,
        "modelId": 265478,
        "name": "v2.0",
        "createdAt": "2024-01-02T10:00:00.000Z",
        "updatedAt": "2024-01-05T11:00:00.000Z",
        "publishedAt": "2024-01-03T12:30:00.000Z",
        "status": "Published",
        "trainedWords": ["celestial style", "star-filled sky"],
        "trainingStatus": None,
        "baseModel": "SDXL 1.0",
        "baseModelType": "Standard",
        "earlyAccessEndsAt": None,
        "description": "<p>Second version with better stars.</p>",
        "air": "urn:air:sdxl:lora:civitai:265478@298654",
        "nsfwLevel": 1,
        "supportsGeneration": True,
        "stats": {"downloadCount": 15234, "ratingCount": 87, "rating": 4.9, "thumbsUpCount": 1290},
        "model": {"name": "Celestial Anime", "type": "LORA", "nsfw": False, "poi": False, "tags": ["anime", "Stars"]},
        "creator": {"username": "stargazer", "image": "https://image.civitai.com/avatar.png"},
        "files": [civitai_file()],
        "images": [
            {
                "url": "https://image.civitai.com/example.jpeg",
                "nsfwLevel": 1,
                "width": 1024,
                "height": 1024,
                "hash": "U5Bn",
                "type": "image",
                "meta": {"prompt": "celestial style, 1girl", "negativePrompt": "lowres", "steps": 30},
            }
        ],
        "downloadUrl": "https://civitai.com/api/download/models/298654",
    }
    version.update(copy.deepcopy(overrides))
    return version


def civitai_model(versions: list[dict[str, Any]] | None = None, **overrides: Any) -> dict[str, Any]:
    """A Civitai model object (``GET /models/{id}``) as SD.Next saves it next to a LoRA as ``<stem>.json``."""
    model_versions = versions if versions is not None else [civitai_version()]
    model: dict[str, Any] = {
        "id": 265478,
        "name": "Celestial Anime",
        "description": "<p>Anime characters under starry skies.</p>",
        "allowNoCredit": True,
        "allowCommercialUse": ["Image", "RentCivit"],
        "allowDerivatives": True,
        "allowDifferentLicense": True,
        "type": "LORA",
        "minor": False,
        "poi": False,
        "nsfw": False,
        "nsfwLevel": 1,
        "supportsGeneration": True,
        "stats": {"downloadCount": 20411, "favoriteCount": 512, "thumbsUpCount": 1702, "commentCount": 33},
        "creator": {"username": "stargazer", "image": None},
        "tags": [{"name": "anime"}, {"name": "style"}, "stars"],
        "modelVersions": [
            {key: value for key, value in copy.deepcopy(version).items() if key not in ("model", "creator")}
            for version in model_versions
        ],
    }
    model.update(copy.deepcopy(overrides))
    return model


def lora_manager(**overrides: Any) -> dict[str, Any]:
    """A ComfyUI-Lora-Manager ``<stem>.metadata.json``."""
    document: dict[str, Any] = {
        "file_name": "celestial_anime_v2",
        "model_name": "Celestial Anime (LM)",
        "file_path": "/srv/loras/celestial_anime_v2.safetensors",
        "size": 228438298,
        "modified": 1704280000.0,
        "sha256": DEFAULT_SHA256,
        "base_model": "Illustrious",
        "preview_url": "",
        "preview_nsfw_level": 2,
        "notes": "Works best at 0.7.",
        "from_civitai": True,
        "usage_tips": json.dumps({"strength": 0.7}),
        "tags": ["anime", "night"],
        "modelDescription": "<p>LM description</p>",
        "civitai_deleted": False,
        "favorite": False,
        "exclude": False,
        "db_checked": False,
        "last_checked_at": 1704280100.0,
        "civitai": civitai_version(name="v2.0-lm"),
    }
    document.update(copy.deepcopy(overrides))
    return document


def a1111(**overrides: Any) -> dict[str, Any]:
    """The A1111 / SD.Next user metadata ``<stem>.json`` (edited in the Lora card's metadata editor)."""
    document: dict[str, Any] = {
        "description": "A1111 description",
        "sd version": "SDXL",
        "activation text": "celestial style, glowing stars",
        "preferred weight": 0.8,
        "negative text": "lowres, bad anatomy",
        "notes": "A1111 notes",
    }
    document.update(copy.deepcopy(overrides))
    return document


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as UTF-8 JSON (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path
