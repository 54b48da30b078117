"""Input and output shapes of the backup endpoints (SPEC 5.9 "Backups")."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from backups.models import Backup, BackupType
from backups.services.restore import RESTORE_MODES
from loraforge.fields import StrictSerializer

DOWNLOAD_URL = "/api/v1/backups/{id}/download"


class BackupSerializer(serializers.ModelSerializer[Backup]):
    """One history item: ``type`` is the display name ("Full", "Metadata Only"), ``size`` null until completed."""

    type = serializers.CharField(source="get_backup_type_display", read_only=True)
    download_url = serializers.SerializerMethodField()
    counts = serializers.DictField(child=serializers.IntegerField(), read_only=True)

    class Meta:
        model = Backup
        fields = (
            "id", "created_at", "type", "backup_type", "size", "status", "sha256", "file_name", "download_url",
            "counts", "error", "finished_at",
        )  # fmt: skip
        read_only_fields = fields

    def get_download_url(self, backup: Backup) -> str:
        return DOWNLOAD_URL.format(id=backup.pk)


class BackupCreateRequestSerializer(StrictSerializer):
    backup_type = serializers.ChoiceField(choices=BackupType.choices, default=BackupType.FULL)


class BackupCreatedSerializer(serializers.Serializer[Any]):
    success = serializers.BooleanField()
    backup_id = serializers.UUIDField()
    job_id = serializers.UUIDField()
    type = serializers.CharField()
    backup_type = serializers.ChoiceField(choices=BackupType.choices)
    status = serializers.CharField()
    size = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class RestoreRequestSerializer(StrictSerializer):
    mode = serializers.ChoiceField(choices=RESTORE_MODES, default="merge")


class RestoreQueuedSerializer(serializers.Serializer[Any]):
    job_id = serializers.UUIDField()
    kind = serializers.CharField()
    status = serializers.CharField()


def backup_created_body(backup: Backup) -> dict[str, Any]:
    """The 202 body of ``POST /backup/create`` (the row's status when answering)."""
    return {
        "success": True,
        "backup_id": str(backup.pk),
        "job_id": str(backup.job_id) if backup.job_id else None,
        "type": backup.get_backup_type_display(),
        "backup_type": backup.backup_type,
        "status": backup.status,
        "size": backup.size,
        "created_at": serializers.DateTimeField().to_representation(backup.created_at),
    }
