"""The archive's names and numbers (SPEC 6.10.1): member paths, file-name sanitising, the options that select the
parts, the manifest, and the messages every validation failure answers with (SPEC 6.10.2, word for word)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

FORMAT = "loraforge-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_MAX_BYTES = 64 * 1024 * 1024

KIND_EXPORT = "export"
KIND_BACKUP = "backup"

# --- members ----------------------------------------------------------------------------------------
EMBEDDINGS = "embeddings/embeddings.jsonl"
JOBS = "generations/jobs.jsonl"
RESULTS = "generations/results.jsonl"
SESSIONS = "recommendations/sessions.jsonl"
FEEDBACK = "recommendations/feedback.jsonl"
PREFERENCES = "recommendations/preferences.jsonl"
RESOURCE_SAMPLES = "analytics/resource_samples.jsonl"
BACKENDS = "config/backends.json"

COUNT_KEYS = (
    "adapters", "lora_files", "sidecars", "previews", "embeddings", "generation_jobs", "generation_results", "images",
    "sessions", "feedback", "preferences", "resource_samples", "backends",
)  # fmt: skip

# Deflate level of JSON members per ``compression``; model and image files are always stored.
COMPRESSION_LEVELS = {"none": 0, "fast": 1, "balanced": 6, "max": 9}

_UNSAFE = re.compile(r"[^A-Za-z0-9._\-()+\[\] ]")
NAME_MAX = 200


def sanitise_file_name(name: str) -> str:
    """Basename only, characters outside ``A-Za-z0-9._-()+[] `` replaced by ``_``, no leading dot, <= 200 chars."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    clean = _UNSAFE.sub("_", base)
    if clean.startswith("."):
        clean = "_" + clean[1:]
    if len(clean) > NAME_MAX:
        stem, dot, ext = clean.rpartition(".")
        clean = stem[: NAME_MAX - len(ext) - 1] + dot + ext if dot and len(ext) < 20 else clean[:NAME_MAX]
    return clean or "_"


def adapter_dir(adapter_id: Any) -> str:
    return f"adapters/{adapter_id}"


def adapter_record_member(adapter_id: Any) -> str:
    return f"{adapter_dir(adapter_id)}/adapter.json"


def adapter_file_member(adapter_id: Any, file_name: str) -> str:
    return f"{adapter_dir(adapter_id)}/files/{sanitise_file_name(file_name)}"


def sidecar_member(adapter_id: Any, file_name: str) -> str:
    return f"{adapter_dir(adapter_id)}/sidecars/{sanitise_file_name(file_name)}"


def preview_member(adapter_id: Any, extension: str) -> str:
    """``extension`` without its dot (``png``)."""
    return f"{adapter_dir(adapter_id)}/preview.{sanitise_file_name(extension.lstrip('.').lower())}"


def image_member(job_id: Any, index: int, extension: str) -> str:
    return f"generations/images/{job_id}/{index:03d}.{sanitise_file_name(extension.lstrip('.').lower())}"


# --- options ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveOptions:
    """Which parts an archive holds (SPEC 5.9 ExportConfig, already validated). A backup sets them from its type."""

    loras: bool = True
    lora_files: bool = False
    lora_metadata: bool = True  # sidecar files (and previews, unless lora_previews is False)
    lora_previews: bool = True  # False only for a metadata_only backup (SPEC 6.10.4: no previews)
    lora_embeddings: bool = False
    generations: bool = False
    generation_images: bool = True  # False only for a metadata_only backup (no generated images)
    date_from: datetime | date | None = None  # generation_range "date_range": jobs created in [date_from, date_to]
    date_to: datetime | date | None = None
    user_data: bool = False
    system_config: bool = False
    analytics: bool = False
    adapter_ids: tuple[str, ...] | None = None
    compression: str = "balanced"

    @property
    def compresslevel(self) -> int:
        return COMPRESSION_LEVELS[self.compression]

    @property
    def nothing_selected(self) -> bool:
        return not (
            self.loras or self.lora_embeddings or self.generations or self.user_data or self.system_config
            or self.analytics
        )  # fmt: skip

    def manifest_options(self) -> dict[str, Any]:
        """The options as the manifest records them (JSON values)."""
        options = asdict(self)
        for key in ("date_from", "date_to"):
            if options[key] is not None:
                options[key] = options[key].isoformat()
        if options["adapter_ids"] is not None:
            options["adapter_ids"] = list(options["adapter_ids"])
        return options

    @classmethod
    def for_backup(cls, backup_type: str) -> ArchiveOptions:
        """``full``: every part; ``metadata_only``: no LoRA files, previews or generated images (SPEC 6.10.4)."""
        full = backup_type == "full"
        return cls(
            loras=True,
            lora_files=full,
            lora_metadata=True,
            lora_previews=full,
            lora_embeddings=True,
            generations=True,
            generation_images=full,
            user_data=True,
            system_config=True,
            analytics=True,
        )


# --- manifest ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberEntry:
    path: str
    size: int
    sha256: str


@dataclass
class Manifest:
    kind: str
    backup_type: str | None
    created_at: str
    app_version: str
    options: dict[str, Any]
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))
    members: list[MemberEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what the writer left out (not part of manifest.json)

    @property
    def total_bytes(self) -> int:
        return sum(member.size for member in self.members)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "backup_type": self.backup_type,
            "created_at": self.created_at,
            "app_version": self.app_version,
            "options": self.options,
            "counts": self.counts,
            "total_bytes": self.total_bytes,
            "members": [asdict(member) for member in self.members],
        }


# --- validation messages (SPEC 6.10.2) ----------------------------------------------------------------
NOT_A_ZIP = "Not a ZIP archive"
TOO_MANY_MEMBERS = "Archive has too many members"
PATH_ESCAPES = "Archive member path escapes the archive root: {name}"
DUPLICATE_MEMBER = "Duplicate archive member: {name}"
SYMLINK_MEMBER = "Archive member is a symbolic link: {name}"
TOO_LARGE = "Archive is too large when extracted"
SUSPICIOUS_RATIO = "Suspicious compression ratio for {name}"
NO_DISK_SPACE = "Not enough disk space"
MANIFEST_MISSING = "manifest.json is missing"
MANIFEST_INVALID = "manifest.json is not valid JSON"
NOT_LORAFORGE = "Not a LoRAForge archive"
UNSUPPORTED_VERSION = "Unsupported archive format version {version}"
UNLISTED_MEMBER = "Archive member not listed in manifest: {name}"
MISSING_MEMBER = "Manifest lists a missing member: {name}"
LARGER_THAN_DECLARED = "Archive member larger than declared: {name}"
CHECKSUM_MISMATCH = "Checksum mismatch for {name}"
INVALID_RECORD = "Invalid {kind} record in {member}: {field}: {message}"

# --- API messages (SPEC 5.9) ----------------------------------------------------------------------------
ONLY_ZIP = "Only ZIP exports are supported"
NO_SPLIT = "Split archives are not supported"
NO_ENCRYPTION = "Encrypted archives are not supported"
TOO_BIG_FOR_LIMIT = "Estimated archive size exceeds max_size_mb"
NOTHING_TO_EXPORT = "Nothing to export"
IMPORT_RUNNING = "Another import or restore is running"
BACKUP_NOT_FOUND = "Backup not found"
BACKUP_FILE_MISSING = "Backup file is missing"
BACKUP_NOT_COMPLETED = "Backup is not completed"
BACKUP_IN_PROGRESS = "Backup is in progress"
BACKUP_CANCELLED = "Cancelled by user"
FILE_NOT_LOCAL = "File not available locally: {path}"


class ArchiveError(Exception):
    """A validation failure: ``str(exc)`` is the SPEC's message for the file."""
