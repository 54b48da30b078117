"""The backups app's one model (SPEC 3.7): a stored archive of the library and the job that wrote it."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class BackupType(models.TextChoices):
    FULL = "full", "Full"
    METADATA_ONLY = "metadata_only", "Metadata Only"


class BackupStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class BackupTrigger(models.TextChoices):
    API = "api"
    CLI = "cli"
    ADMIN = "admin"
    SCHEDULE = "schedule"


class Backup(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    backup_type = models.CharField(max_length=16, choices=BackupType.choices, default=BackupType.FULL)
    status = models.CharField(max_length=16, choices=BackupStatus.choices, default=BackupStatus.PENDING)
    file_name = models.CharField(max_length=255, null=True, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(null=True, blank=True)
    job = models.ForeignKey(
        "loraforge.BackgroundJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="backups"
    )
    trigger = models.CharField(max_length=16, choices=BackupTrigger.choices, default=BackupTrigger.API)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_backup_type_display()} backup {self.id} ({self.status})"
