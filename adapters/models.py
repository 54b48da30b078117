"""The LoRA catalogue: one ``Adapter`` per distinct file content, and the scan cache."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.db.models.functions import Coalesce, Lower

from adapters.tags import tag_index_for

TAG_LIMIT = 100
TAG_MAX_LENGTH = 64
PHRASE_LIMIT = 200
PHRASE_MAX_LENGTH = 200
WEIGHT_MIN, WEIGHT_MAX = -5.0, 5.0
ORDINAL_MIN, ORDINAL_MAX = -1_000_000, 1_000_000


class AdapterFormat(models.TextChoices):
    SAFETENSORS = "safetensors"
    PT = "pt"
    CKPT = "ckpt"


class HashStatus(models.TextChoices):
    PENDING = "pending"
    DONE = "done"
    ERROR = "error"
    SKIPPED = "skipped"


class BaseFamily(models.TextChoices):
    SD1 = "sd1"
    SD2 = "sd2"
    SDXL = "sdxl"
    SD3 = "sd3"
    FLUX1 = "flux1"
    FLUX2 = "flux2"
    CHROMA = "chroma"
    LUMINA2 = "lumina2"
    HUNYUAN = "hunyuan"
    CASCADE = "cascade"
    OTHER = "other"
    UNKNOWN = "unknown"


class CivitaiMatch(models.TextChoices):
    SHA256 = "sha256"
    AUTOV2 = "autov2"
    AUTOV3 = "autov3"
    FILENAME = "filename"
    SINGLE_VERSION = "single_version"
    UNVERIFIED = "unverified"
    NONE = "none"


# Fields a curator owns once edited (SPEC 6.6.7): a re-import never overwrites a locked one.
CURATABLE_FIELDS: tuple[str, ...] = (
    "name",
    "version",
    "description",
    "tags",
    "triggers",
    "trained_words",
    "activation_text",
    "negative_text",
    "notes",
    "sdnext_name",
    "base_model",
    "base_family",
    "sd_version",
    "nsfw_level",
    "visibility",
    "archetype",
    "archetype_confidence",
    "supports_generation",
    "preferred_weight",
)


class Adapter(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    version = models.CharField(max_length=100, null=True, blank=True)
    canonical_version_name = models.CharField(max_length=100, null=True, blank=True)
    description = models.TextField(null=True, blank=True)
    author_username = models.CharField(max_length=150, null=True, blank=True)
    visibility = models.CharField(max_length=32, default="Public")
    published_at = models.DateTimeField(null=True, blank=True)
    tags = models.JSONField(default=list, blank=True)
    tag_index = models.TextField(default="", blank=True, editable=False)
    search_index = models.TextField(default="", blank=True, editable=False)
    trained_words = models.JSONField(default=list, blank=True)
    triggers = models.JSONField(default=list, blank=True)
    activation_text = models.TextField(null=True, blank=True)
    negative_text = models.TextField(null=True, blank=True)
    notes = models.TextField(null=True, blank=True)
    header_tags = models.JSONField(default=list, blank=True)

    file_path = models.CharField(max_length=1024, unique=True)
    format = models.CharField(max_length=16, choices=AdapterFormat.choices, default=AdapterFormat.SAFETENSORS)
    file_size = models.BigIntegerField(null=True, blank=True)
    file_mtime = models.DateTimeField(null=True, blank=True)
    missing_since = models.DateTimeField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, null=True, blank=True, db_index=True)
    autov2 = models.CharField(max_length=10, null=True, blank=True, db_index=True)
    autov3 = models.CharField(max_length=12, null=True, blank=True)
    hash_status = models.CharField(max_length=16, choices=HashStatus.choices, default=HashStatus.PENDING)
    header_metadata = models.JSONField(null=True, blank=True)
    header_error = models.CharField(max_length=500, null=True, blank=True)
    network_dim = models.IntegerField(null=True, blank=True)
    network_alpha = models.FloatField(null=True, blank=True)
    network_module = models.CharField(max_length=100, null=True, blank=True)
    output_name = models.CharField(max_length=255, null=True, blank=True)
    base_model = models.CharField(max_length=64, null=True, blank=True)
    base_family = models.CharField(max_length=16, choices=BaseFamily.choices, default=BaseFamily.UNKNOWN, db_index=True)
    sd_version = models.CharField(max_length=64, null=True, blank=True)
    sdnext_name = models.CharField(max_length=200)

    weight = models.FloatField(default=1.0)
    preferred_weight = models.FloatField(null=True, blank=True)
    active = models.BooleanField(default=False)  # indexed by adapter_active_ordinal and adapter_active_partial
    ordinal = models.IntegerField(null=True, blank=True)
    archetype = models.CharField(max_length=64, null=True, blank=True)
    archetype_confidence = models.FloatField(null=True, blank=True)

    primary_file_name = models.CharField(max_length=255, null=True, blank=True)
    primary_file_size_kb = models.IntegerField(null=True, blank=True)
    primary_file_sha256 = models.CharField(max_length=64, null=True, blank=True)
    primary_file_download_url = models.CharField(max_length=1024, null=True, blank=True)
    primary_file_local_path = models.CharField(max_length=1024, null=True, blank=True)
    supports_generation = models.BooleanField(default=False)
    nsfw_level = models.IntegerField(default=0)
    civitai_model_id = models.IntegerField(null=True, blank=True)
    civitai_version_id = models.IntegerField(null=True, blank=True, db_index=True)
    civitai_match = models.CharField(max_length=16, choices=CivitaiMatch.choices, default=CivitaiMatch.NONE)
    stats = models.JSONField(null=True, blank=True)
    extra = models.JSONField(null=True, blank=True)
    json_file_path = models.CharField(max_length=1024, null=True, blank=True)
    json_file_mtime = models.DateTimeField(null=True, blank=True)
    json_file_size = models.IntegerField(null=True, blank=True)
    sidecars = models.JSONField(default=list, blank=True)
    preview_path = models.CharField(max_length=1024, null=True, blank=True)
    duplicate_paths = models.JSONField(default=list, blank=True)
    has_duplicates = models.BooleanField(default=False, editable=False)
    locked_fields = models.JSONField(default=list, blank=True)

    usage_count = models.IntegerField(default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_ingested_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Indexed by the sort indexes below, which lead with them.
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = [Lower("name"), "id"]
        constraints = [
            models.UniqueConstraint(
                models.F("name"), Coalesce("version", models.Value("")), name="adapter_name_version_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(weight__gte=WEIGHT_MIN, weight__lte=WEIGHT_MAX), name="adapter_weight_range"
            ),
            models.CheckConstraint(
                condition=models.Q(nsfw_level__gte=0, nsfw_level__lte=63), name="adapter_nsfw_range"
            ),
        ]
        indexes = [
            models.Index(fields=["active", "ordinal"], name="adapter_active_ordinal"),
            # Django writes ``filter(active=True)`` as ``WHERE "active"``, which SQLite matches only to a
            # partial index with the same condition (composition reads the active set on every request).
            models.Index(fields=["ordinal"], condition=models.Q(active=True), name="adapter_active_partial"),
            models.Index(Lower("name"), "id", name="adapter_lname_id"),
            models.Index(models.F("created_at").desc(), Lower("name"), "id", name="adapter_created_sort"),
            models.Index(models.F("created_at").asc(), Lower("name"), "id", name="adapter_created_asc_sort"),
            models.Index(models.F("updated_at").desc(), Lower("name"), "id", name="adapter_updated_sort"),
            models.Index(models.F("usage_count").desc(), Lower("name"), "id", name="adapter_usage_sort"),
            # Partial: Django compiles ``has_duplicates=True`` to a bare ``WHERE "has_duplicates"``, which a plain
            # index on the column cannot serve (SQLite scanned the whole table on every create).
            models.Index(
                fields=["has_duplicates"],
                condition=models.Q(has_duplicates=True),
                name="adapter_has_duplicates_partial",
            ),
        ]

    def __str__(self) -> str:
        return self.name if not self.version else f"{self.name} ({self.version})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.refresh_indexes()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "tag_index", "search_index", "has_duplicates", "updated_at"}
        super().save(*args, **kwargs)

    def refresh_indexes(self) -> None:
        """Recompute the internal, denormalised search columns from the public fields."""
        self.tag_index = tag_index_for(self.tags or [])
        self.search_index = search_index_for(self.name, self.sdnext_name, self.author_username)
        self.has_duplicates = bool(self.duplicate_paths)

    @property
    def file_missing(self) -> bool:
        """The adapter's file is not present on this host (a scan stamped ``missing_since``)."""
        return self.missing_since is not None


def file_missing_filter(missing: bool) -> models.Q:
    """The queryset condition of ``Adapter.file_missing``."""
    return models.Q(missing_since__isnull=not missing)


def search_index_for(*values: str | None) -> str:
    """Lower-cased, newline-joined text searched by ``?search=`` (SPEC 5.2)."""
    return "\n".join((value or "").lower() for value in values)


class ScannedFile(models.Model):
    """Hash/header cache keyed by path and the exclusion list (SPEC 3.2)."""

    path = models.CharField(max_length=1024, unique=True)
    size = models.BigIntegerField()
    mtime_ns = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, null=True, blank=True, db_index=True)
    header = models.JSONField(null=True, blank=True)
    header_error = models.CharField(max_length=500, null=True, blank=True)
    excluded = models.BooleanField(default=False)
    # Digest of the sidecar and preview files (path, size, mtime) seen with this file: sidecars are
    # re-read only when it changes (SPEC 6.6.4). Null = unknown, so the next scan reads them.
    sidecar_fingerprint = models.CharField(max_length=64, null=True, blank=True)
    adapter = models.ForeignKey(Adapter, null=True, blank=True, on_delete=models.SET_NULL, related_name="scanned_files")
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return self.path


class CatalogueState(models.Model):
    """One row whose ``version`` database triggers bump on every write to the adapters table.

    Readers use it to cache rendered API pages: a page cached under version N is valid while the
    version is still N, however the table was written (ORM, bulk update, raw SQL, another process).
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    version = models.BigIntegerField(default=0)
    row_count = models.BigIntegerField(default=0)  # adapters in the table, kept by the same triggers

    def __str__(self) -> str:
        return f"catalogue version {self.version}"


class AdapterTag(models.Model):
    """One row per (tag, adapter), kept by database triggers from ``Adapter.tags`` (``adapters/db_triggers.py``).

    Tag filters and tag counts read it through its (tag, adapter) index instead of scanning ``tag_index``.
    Python never writes it.
    """

    adapter = models.ForeignKey(Adapter, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    tag = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tag", "adapter"], name="adaptertag_tag_adapter")]

    def __str__(self) -> str:
        return self.tag
