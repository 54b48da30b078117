"""Finding and reading the sidecar files next to a model file (SPEC 6.6.4).

``find_sidecars`` only looks for files (from the walk's directory listing when it has one, so no
system call is made); ``read_sidecars`` reads and validates them. Bad content never raises: the file
becomes a warning and counts as absent.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.scanner.paths import file_stem

SIDECAR_MAX_BYTES = 10 * 1024 * 1024
PREVIEW_SUFFIXES = (
    ".preview.png", ".preview.jpg", ".preview.jpeg", ".preview.webp", ".png", ".jpg", ".jpeg", ".webp",
)  # fmt: skip
# Data sidecars by file-name suffix, in the order they are reported.
SIDECAR_SUFFIXES = ((".metadata.json", "lora_manager"), (".civitai.info", "civitai_info"), (".json", "json"))
SIDECAR_KINDS = ("lora_manager", "civitai_info", "civitai_model", "a1111")


class SidecarInvalid(Exception):
    """A sidecar that cannot be used; the message is the reason in the item warning."""


@dataclass(frozen=True)
class SidecarFile:
    """A sidecar or preview found next to a model file, not read yet."""

    role: str  # "lora_manager", "civitai_info", "json" (Civitai model or A1111) or "preview"
    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Sidecar:
    kind: str  # "lora_manager" | "civitai_info" | "civitai_model" | "a1111"
    path: Path
    size: int
    mtime_ns: int
    data: dict[str, Any]

    @property
    def mtime(self) -> datetime:
        return datetime_from_ns(self.mtime_ns)


@dataclass(frozen=True)
class SidecarSet:
    sidecars: tuple[Sidecar, ...] = ()  # valid ones only, in SIDECAR_KINDS order
    preview: Path | None = None
    warnings: tuple[str, ...] = ()

    @property
    def excluded(self) -> bool:
        """Lora-Manager's ``"exclude": true``: the model is skipped before it is hashed."""
        lora_manager = self.first("lora_manager")
        return lora_manager is not None and lora_manager.data.get("exclude") is True

    def first(self, kind: str) -> Sidecar | None:
        return next((sidecar for sidecar in self.sidecars if sidecar.kind == kind), None)

    def listing(self) -> list[dict[str, Any]]:
        """The ``Adapter.sidecars`` value."""
        return [
            {"kind": sidecar.kind, "path": str(sidecar.path), "mtime": iso_utc(sidecar.mtime), "size": sidecar.size}
            for sidecar in self.sidecars
        ]


def datetime_from_ns(mtime_ns: int) -> datetime:
    """An exact (microsecond) UTC datetime for a ``st_mtime_ns`` value."""
    seconds, nanoseconds = divmod(mtime_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=nanoseconds // 1000)


def iso_utc(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix, as the API writes datetimes."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def find_sidecars(model_path: Path, siblings: Mapping[str, os.stat_result] | None = None) -> tuple[SidecarFile, ...]:
    """The sidecar and preview files of a model file. With ``siblings`` (file name -> stat of every file in the model's
    folder, from the walk's directory listing) no system call is made; without it, each candidate is stat()ed."""
    stem = file_stem(model_path)
    found = []
    for suffix, role in SIDECAR_SUFFIXES:
        sidecar = _candidate(model_path.parent / f"{stem}{suffix}", role, siblings)
        if sidecar is not None:
            found.append(sidecar)
    for suffix in PREVIEW_SUFFIXES:
        preview = _candidate(model_path.parent / f"{stem}{suffix}", "preview", siblings)
        if preview is not None:
            found.append(preview)
            break
    return tuple(found)


def _candidate(path: Path, role: str, siblings: Mapping[str, os.stat_result] | None) -> SidecarFile | None:
    if siblings is not None:
        info = siblings.get(path.name)
    else:
        try:
            info = os.stat(path)
        except (OSError, ValueError):
            info = None
    if info is None or not stat.S_ISREG(info.st_mode):
        return None
    return SidecarFile(role=role, path=path, size=info.st_size, mtime_ns=info.st_mtime_ns)


def read_sidecars(found: Iterable[SidecarFile]) -> SidecarSet:
    """Read and validate the found files (size cap, JSON object, UTF-8; a `.json` with a `modelVersions` list is a
    Civitai model, otherwise A1111 metadata). Never raises for bad content: bad files become warnings and count as
    absent."""
    sidecars: list[Sidecar] = []
    warnings: list[str] = []
    preview: Path | None = None
    for item in found:
        if item.role == "preview":
            preview = preview or item.path
            continue
        try:
            data = load_json_object(item.path, item.size)
        except SidecarInvalid as exc:
            warnings.append(f"Invalid sidecar {item.path.name}: {exc}")
            continue
        sidecars.append(Sidecar(_kind(item.role, data), item.path, item.size, item.mtime_ns, data))
    sidecars.sort(key=lambda sidecar: SIDECAR_KINDS.index(sidecar.kind))
    return SidecarSet(sidecars=tuple(sidecars), preview=preview, warnings=tuple(warnings))


def _kind(role: str, data: dict[str, Any]) -> str:
    if role != "json":
        return role
    return "civitai_model" if isinstance(data.get("modelVersions"), list) else "a1111"


def load_json_object(path: Path, size: int) -> dict[str, Any]:
    """The file's JSON object; ``SidecarInvalid`` with the reason otherwise."""
    if size > SIDECAR_MAX_BYTES:
        raise SidecarInvalid("larger than 10 MiB")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(SIDECAR_MAX_BYTES + 1)
    except OSError as exc:
        raise SidecarInvalid(f"cannot be read ({exc.strerror or exc.__class__.__name__})") from None
    if len(raw) > SIDECAR_MAX_BYTES:
        raise SidecarInvalid("larger than 10 MiB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SidecarInvalid("not valid UTF-8") from None
    try:
        document = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):
        raise SidecarInvalid("not valid JSON") from None
    if not isinstance(document, dict):
        raise SidecarInvalid("not a JSON object")
    return document


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (and PostgreSQL's jsonb refuses them).
    raise ValueError(name)


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):  # 1e400 parses to inf, which no database JSON column accepts
        raise SidecarInvalid("number out of range")
    return number
