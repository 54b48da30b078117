"""Models of the `generation` app (SPEC 3.4): the SDNext servers LoRAForge generates with."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
NAME_RE = re.compile(NAME_PATTERN)
RESERVED_NAMES = frozenset({"sdnext", "auto", "any"})
DEFAULT_BACKEND_NAME = "default"
TIMEOUT_MIN, TIMEOUT_MAX = 1, 7200
LAST_ERROR_MAX = 500

NAME_INVALID = f"name must match {NAME_PATTERN}"
NAME_RESERVED = "name '{name}' is reserved"
NAME_TAKEN = "a backend with this name already exists"
URL_INVALID = "url must be an http(s) URL without credentials, query or fragment"


class BackendKind(models.TextChoices):
    SDNEXT = "sdnext"


def backend_name_error(name: str) -> str | None:
    """The 400 text for a name that may not be used, or ``None`` (uniqueness is checked separately)."""
    if not NAME_RE.fullmatch(name):
        return NAME_INVALID
    if name in RESERVED_NAMES:
        return NAME_RESERVED.format(name=name)
    return None


def normalize_backend_url(value: str) -> str:
    """``http(s)://host[:port][/subpath]`` with the trailing slash stripped; ``ValueError(URL_INVALID)`` otherwise."""
    text = value.strip()
    if not text or any(char in text for char in "?#@ \t\r\n\\"):
        raise ValueError(URL_INVALID)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError(URL_INVALID) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(URL_INVALID)
    return urlunsplit((scheme, parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


class GenerationBackend(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=64, unique=True, error_messages={"unique": NAME_TAKEN})
    kind = models.CharField(max_length=16, choices=BackendKind.choices, default=BackendKind.SDNEXT)
    url = models.CharField(max_length=500)
    username = models.CharField(max_length=150, null=True, blank=True)
    # Write-only: no API response, admin page, log line or export ever contains it.
    password = models.CharField(max_length=500, null=True, blank=True)
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False, help_text="Managed from SDNEXT_URL at every start.")
    timeout_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(TIMEOUT_MIN), MaxValueValidator(TIMEOUT_MAX)],
        help_text="Overrides SDNEXT_TIMEOUT.",
    )
    lease_job = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    healthy = models.BooleanField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=LAST_ERROR_MAX, null=True, blank=True)
    version_info = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(timeout_seconds__isnull=True)
                | models.Q(timeout_seconds__gte=TIMEOUT_MIN, timeout_seconds__lte=TIMEOUT_MAX),
                name="generation_backend_timeout_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def has_live_lease(self, now: datetime | None = None) -> bool:
        """A job holds the backend and its lease has not expired."""
        if self.lease_job is None or self.lease_expires_at is None:
            return False
        return self.lease_expires_at > (now or timezone.now())

    @property
    def current_job_id(self) -> uuid.UUID | None:
        return self.lease_job if self.has_live_lease() else None


class ResultContentType(models.TextChoices):
    PNG = "image/png"
    JPEG = "image/jpeg"
    WEBP = "image/webp"


class GenerationResult(models.Model):
    """One stored image of a generation job (SPEC 3.4); the file lives under ``LORAFORGE_MEDIA_ROOT``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey("deliveries.DeliveryJob", on_delete=models.CASCADE, related_name="results")
    index = models.IntegerField()
    file = models.CharField(max_length=500, help_text="Path relative to the media root.")
    content_type = models.CharField(max_length=16, choices=ResultContentType.choices)
    size_bytes = models.BigIntegerField()
    width = models.IntegerField(null=True, blank=True)
    height = models.IntegerField(null=True, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    infotext = models.TextField(default="", blank=True)
    rating = models.SmallIntegerField(null=True, blank=True)
    is_favorite = models.BooleanField(default=False, db_index=True)
    rating_updated_at = models.DateTimeField(null=True, blank=True)
    favorite_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="generation_result_job_index"),
            models.CheckConstraint(
                condition=models.Q(rating__isnull=True) | models.Q(rating__gte=0, rating__lte=5),
                name="generation_result_rating_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job_id}/{self.index:03d}"
