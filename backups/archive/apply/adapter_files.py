"""Where an imported adapter's files go (SPEC 6.10.3): the LoRA file, its sidecars and its preview. Targets are
computed here, never read from the archive; an existing file is reused when its content is the same and never
overwritten."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from adapters.models import Adapter
from adapters.scanner.hashing import sha256_file
from adapters.scanner.paths import file_stem, lora_roots, path_exists, root_of
from backups.archive.apply.adapter_records import AdapterRecord
from backups.archive.apply.context import ApplyContext
from backups.archive.format import FILE_NOT_LOCAL, sanitise_file_name

SUFFIX_TRIES = 100


@dataclass
class Location:
    """Where the adapter's files will be after the import, and which members must be copied there."""

    values: dict[str, Any] = field(default_factory=dict)  # file_path, json_file_path, sidecars, preview_path, ...
    copies: list[tuple[str, Path]] = field(default_factory=list)  # (member, final path)


class PathClaims:
    """Paths already registered to an adapter (database) or planned by an earlier record of the same archive."""

    def __init__(self) -> None:
        self.planned: dict[str, Any] = {}
        self.holders: dict[str, Any] = {}

    def prefetch(self, paths: list[str]) -> None:
        self.holders.update(dict.fromkeys(paths))
        for path, pk in Adapter.objects.order_by().filter(file_path__in=paths).values_list("file_path", "pk"):
            self.holders[path] = pk

    def holder(self, path: Path) -> Any:
        key = str(path)
        if key in self.planned:
            return self.planned[key]
        if key not in self.holders:
            self.holders[key] = Adapter.objects.order_by().filter(file_path=key).values_list("pk", flat=True).first()
        return self.holders[key]

    def free_for(self, path: Path, own_id: Any) -> bool:
        holder = self.holder(path)
        return holder is None or holder == own_id


def _same_content(path: Path, sha256: str | None) -> bool:
    try:
        return sha256 is not None and path.is_file() and sha256_file(path) == sha256.lower()
    except OSError:
        return False


def _suffixed(path: Path, sha256: str, attempt: int) -> Path:
    stem, ext = os.path.splitext(path.name)
    tag = sha256[:8] if attempt == 1 else f"{sha256[:8]}-{attempt}"
    return path.with_name(f"{stem}-{tag}{ext}")


def _choose(candidates: list[Path], sha256: str, claims: PathClaims, own_id: Any) -> tuple[Path, bool] | None:
    """The first candidate that is free (copy there) or holds the same content (reuse): ``(path, copy)``."""
    for candidate in candidates:
        if not claims.free_for(candidate, own_id):
            continue
        if not path_exists(candidate):
            return candidate, True
        if _same_content(candidate, sha256):
            return candidate, False
    return None


def model_target(record: AdapterRecord, sha256: str, claims: PathClaims, own_id: Any) -> tuple[Path, bool]:
    """Target of an embedded LoRA file: the original path when inside a LoRA folder, else the import folder of the
    first LoRA folder, ``-<sha256[:8]>`` before the extension when that name holds other content."""
    original = Path(record.values["file_path"])
    candidates = [original] if original.is_absolute() and root_of(original) is not None else []
    imported = lora_roots()[0] / settings.LORAFORGE_IMPORT_SUBDIR / sanitise_file_name(original.name)
    candidates.append(imported)
    candidates.extend(_suffixed(imported, sha256, attempt) for attempt in range(1, SUFFIX_TRIES))
    chosen = _choose(candidates, sha256, claims, own_id)
    if chosen is None:
        raise OSError(f"No free name for {imported}")
    return chosen


def _renamed(name: str, old_stem: str, new_stem: str) -> str:
    if old_stem and name.startswith(old_stem):
        return sanitise_file_name(new_stem + name[len(old_stem) :])
    return sanitise_file_name(name)


def _beside(context: ApplyContext, member: str, target: Path, location: Location) -> Path | None:
    """Copy ``member`` to ``target`` unless a file is there: reuse it when the content is the same, else skip."""
    if target in {final for _member, final in location.copies}:
        return None
    if not path_exists(target):
        location.copies.append((member, target))
        return target
    if _same_content(target, context.archive.members[member].sha256):
        return target
    context.warn(f"Not overwriting existing file: {target}")
    return None


def _exists_inside(path: str | None) -> bool:
    return bool(path) and root_of(str(path)) is not None and path_exists(Path(str(path)))


def _attach_companions(context: ApplyContext, record: AdapterRecord, target: Path, location: Location) -> None:
    values = record.values
    old_stem, new_stem = file_stem(values["file_path"]), file_stem(target)
    placed: dict[str, str] = {}
    for sidecar in record.sidecar_members:
        final = _beside(context, sidecar.member, target.parent / _renamed(sidecar.name, old_stem, new_stem), location)
        if final is not None:
            placed[sidecar.name] = str(final)
    sidecars = []
    for entry in values.get("sidecars") or []:
        path = entry.get("path") if isinstance(entry, dict) else None
        name = os.path.basename(str(path or ""))
        if name in placed:
            sidecars.append({**entry, "path": placed[name]})
        elif _exists_inside(path):
            sidecars.append(entry)
    json_path = values.get("json_file_path")
    json_name = os.path.basename(json_path or "")
    location.values["sidecars"] = sidecars
    location.values["json_file_path"] = placed.get(json_name) or (json_path if _exists_inside(json_path) else None)
    preview: str | None = None
    if record.preview_member is not None:
        extension = record.preview_member.rsplit(".", 1)[-1]
        original = values.get("preview_path")
        name = (
            _renamed(os.path.basename(original), old_stem, new_stem) if original else f"{new_stem}.preview.{extension}"
        )
        final = _beside(context, record.preview_member, target.parent / name, location)
        preview = str(final) if final is not None else None
    if preview is None and _exists_inside(values.get("preview_path")):
        preview = values["preview_path"]
    location.values["preview_path"] = preview


def location_plan(
    context: ApplyContext, record: AdapterRecord, claims: PathClaims, *, own_id: Any = None
) -> Location | None:
    """Where a created (or file-less matched) adapter's files go; None when its file is not available: the record
    has no embedded file and its original path is not an existing file inside a LoRA folder."""
    location = Location()
    values = record.values
    if record.file_member is not None:
        sha256 = context.archive.members[record.file_member].sha256
        target, copy = model_target(record, sha256, claims, own_id)
        if copy:
            location.copies.append((record.file_member, target))
    else:
        original = Path(values["file_path"])
        if not (original.is_absolute() and _exists_inside(str(original)) and claims.free_for(original, own_id)):
            return None
        target = original
    claims.planned[str(target)] = own_id
    location.values.update(file_path=str(target), missing_since=None)
    if record.file_member is not None:
        location.values["primary_file_local_path"] = str(target)
    _attach_companions(context, record, target, location)
    return location


def file_not_local(record: AdapterRecord) -> str:
    return FILE_NOT_LOCAL.format(path=record.values["file_path"])
