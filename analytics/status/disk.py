"""Disk usage of the data folder, the media root and every LoRA folder (SPEC 6.9).

``shutil.disk_usage`` runs in probe threads (a hung network mount cannot hold the status); ``content_bytes`` comes
from database sums in the request's thread, never from walking folders: backups and stored images for the data
folder, stored images for the media root, the adapters' file sizes for each LoRA folder.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db.models import Q, Sum

from adapters.models import Adapter
from analytics.resources import DiskUsage, disk_usage
from analytics.status.probes import Probe
from generation.models import GenerationResult

PROBE_PREFIX = "disk:"
BACKUP_MODEL = ("backups", "Backup")


def lora_dirs() -> list[str]:
    return [str(path) for path in settings.LORAFORGE_LORA_DIRS]


def _paths() -> dict[str, str]:
    paths = {"data": str(settings.DATA_DIR), "media": str(settings.MEDIA_ROOT)}
    paths.update({f"lora:{index}": path for index, path in enumerate(lora_dirs())})
    return paths


def _usage(path: str) -> tuple[bool, DiskUsage | None]:
    exists = os.path.isdir(path)
    return exists, disk_usage(path) if exists else None


def disk_probes() -> dict[str, Probe]:
    return {
        PROBE_PREFIX + key: Probe(run=partial(_usage, path), fallback=(True, None)) for key, path in _paths().items()
    }


def _media_bytes() -> int:
    return int(GenerationResult.objects.aggregate(total=Sum("size_bytes"))["total"] or 0)


def _backup_bytes() -> int:
    """Backups belong to a higher app (analytics does not import it): read through the app registry."""
    try:
        backup = apps.get_model(*BACKUP_MODEL)
    except LookupError:
        return 0
    if not any(field.name == "size" for field in backup._meta.get_fields()):
        return 0
    return int(backup.objects.aggregate(total=Sum("size"))["total"] or 0)


def _lora_bytes(folders: list[str]) -> list[int]:
    """Sizes of the present adapter files under each folder, in one aggregate."""
    if not folders:
        return []
    sums = {
        f"folder_{index}": Sum("file_size", filter=Q(file_path__startswith=folder.rstrip(os.sep) + os.sep))
        for index, folder in enumerate(folders)
    }
    totals = Adapter.objects.filter(missing_since__isnull=True).aggregate(**sums)
    return [int(totals[f"folder_{index}"] or 0) for index in range(len(folders))]


def _block(path: str, usage: DiskUsage | None, content_bytes: int) -> dict[str, Any]:
    return {
        "path": path,
        "total_bytes": usage.total_bytes if usage else None,
        "used_bytes": usage.used_bytes if usage else None,
        "free_bytes": usage.free_bytes if usage else None,
        "percent": usage.percent if usage else None,
        "content_bytes": content_bytes,
    }


def disk_status(results: dict[str, Any]) -> dict[str, Any]:
    """The ``disk`` block from the probes' results (database sums read here)."""
    paths = _paths()
    media = _media_bytes()
    folders = lora_dirs()
    lora_bytes = _lora_bytes(folders)
    loras = []
    for index, (folder, content) in enumerate(zip(folders, lora_bytes, strict=True)):
        exists, usage = results[PROBE_PREFIX + f"lora:{index}"]
        loras.append({**_block(folder, usage, content), "exists": exists})
    return {
        "data": _block(paths["data"], results[PROBE_PREFIX + "data"][1], _backup_bytes() + media),
        "media": _block(paths["media"], results[PROBE_PREFIX + "media"][1], media),
        "loras": loras,
    }


def disk_warnings(disk: dict[str, Any], *, threshold: int) -> list[str]:
    """``"Disk usage of <path> is <p>%"`` above the threshold (once per path); ``"LoRA folder does not exist"``."""
    warnings: list[str] = []
    seen: set[str] = set()
    for block in [disk["data"], disk["media"], *disk["loras"]]:
        percent = block["percent"]
        if percent is not None and percent > threshold and block["path"] not in seen:
            seen.add(block["path"])
            warnings.append(f"Disk usage of {block['path']} is {percent}%")
    warnings += [f"LoRA folder does not exist: {block['path']}" for block in disk["loras"] if not block["exists"]]
    return warnings


def storage_usage_of_data() -> DiskUsage | None:
    return disk_usage(Path(settings.DATA_DIR))
