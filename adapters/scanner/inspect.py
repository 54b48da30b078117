"""Everything LoRAForge learns from one model file without sidecars: stat, header, hash."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from adapters.scanner.basemodel import BaseModel, detect_base_model
from adapters.scanner.hashing import sha256_file
from adapters.scanner.headers import Header, HeaderFields, derive_fields, read_header
from adapters.scanner.paths import file_stem, model_format


@dataclass(frozen=True)
class FileFacts:
    path: Path
    format: str
    size: int
    mtime_ns: int
    header: Header
    fields: HeaderFields
    base: BaseModel
    sha256: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def mtime(self) -> datetime:
        return datetime.fromtimestamp(self.mtime_ns / 1e9, tz=UTC)

    @property
    def stem(self) -> str:
        return file_stem(self.path)


def header_limit_bytes() -> int:
    return int(settings.LORAFORGE_HEADER_MAX_MB) * 1024 * 1024


def inspect_file(path: Path, *, compute_hash: bool) -> FileFacts:
    """Stat, read the header (safetensors only; .pt/.ckpt are never parsed) and optionally hash.

    Raises ``OSError`` when the file cannot be read.
    """
    fmt = model_format(path) or "safetensors"
    stat = os.stat(path)
    header = Header(metadata=None)
    if fmt == "safetensors":
        with open(path, "rb") as handle:
            header = read_header(handle, stat.st_size, header_limit_bytes())
    fields = derive_fields(header.metadata)
    base = detect_base_model(metadata=header.metadata, file_name=path.name)
    digest = sha256_file(path) if compute_hash else None
    return FileFacts(
        path=path,
        format=fmt,
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        header=header,
        fields=fields,
        base=base,
        sha256=digest,
    )


def header_field_values(facts: FileFacts) -> dict[str, Any]:
    """Import-owned adapter fields derived from the file itself."""
    return {
        "format": facts.format,
        "file_size": facts.size,
        "file_mtime": facts.mtime,
        "header_metadata": facts.header.metadata,
        "header_error": facts.header.error,
        "network_dim": facts.fields.network_dim,
        "network_alpha": facts.fields.network_alpha,
        "network_module": facts.fields.network_module,
        "output_name": (facts.fields.output_name or "")[:255] or None,
        "autov3": facts.fields.autov3,
        "header_tags": facts.fields.header_tags,
    }
