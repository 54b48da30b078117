"""Everything LoRAForge learns from one model file without sidecars: stat, header, hash (built by
``adapters.scanner.ingest.make_facts``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from adapters.scanner.basemodel import BaseModel
from adapters.scanner.headers import Header, HeaderFields
from adapters.scanner.paths import file_stem


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
