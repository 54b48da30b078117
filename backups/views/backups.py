"""REST endpoints of backups (SPEC 5.9 "Backups"): history, create, detail, download, restore, delete."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.urls import URLPattern, URLResolver, re_path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backups.archive.format import BACKUP_FILE_MISSING, BACKUP_NOT_COMPLETED, BACKUP_NOT_FOUND
from backups.models import Backup, BackupStatus
from backups.serializers.backups import (
    BackupCreatedSerializer,
    BackupCreateRequestSerializer,
    BackupSerializer,
    RestoreQueuedSerializer,
    RestoreRequestSerializer,
    backup_created_body,
)
from backups.services.backups import backup_create, backup_delete, backup_path
from backups.services.restore import backup_restore_start
from loraforge.errors import Conflict, NotFound
from loraforge.media_views import FILE_RENDERERS, file_response
from loraforge.schema import CONFLICT, NOT_FOUND
from loraforge.views import UUID_RE

HISTORY_LIMIT = 1000
SERVICE_UNAVAILABLE = OpenApiResponse(description="Task queue unavailable (with `job_id`)")
BACKUP_ID = OpenApiParameter("backup_id", str, OpenApiParameter.PATH, description="The backup's id (UUID)")
NO_FORMAT = OpenApiParameter("format", exclude=True)


def _backup(backup_id: str) -> Backup:
    backup = Backup.objects.filter(pk=backup_id).first() if UUID_RE.fullmatch(backup_id) else None
    if backup is None:
        raise NotFound(BACKUP_NOT_FOUND)
    return backup


def history() -> QuerySet[Backup]:
    return Backup.objects.order_by("-created_at", "-id")[:HISTORY_LIMIT]


class BackupHistoryView(APIView):
    @extend_schema(responses={200: BackupSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(BackupSerializer(history(), many=True).data)


class BackupCreateView(APIView):
    """``POST /backup/create`` and ``POST /backups``: 202 with the pending backup; its task writes the archive."""

    @extend_schema(
        request=BackupCreateRequestSerializer,
        responses={202: BackupCreatedSerializer, 503: SERVICE_UNAVAILABLE},
    )
    def post(self, request: Request) -> Response:
        serializer = BackupCreateRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        backup = backup_create(backup_type=serializer.validated_data["backup_type"], trigger="api", created_via="api")
        return Response(backup_created_body(backup), status=status.HTTP_202_ACCEPTED)


class BackupDetailView(APIView):
    @extend_schema(parameters=[BACKUP_ID], responses={200: BackupSerializer, 404: NOT_FOUND})
    def get(self, request: Request, backup_id: str) -> Response:
        return Response(BackupSerializer(_backup(backup_id)).data)

    @extend_schema(parameters=[BACKUP_ID], responses={204: None, 404: NOT_FOUND, 409: CONFLICT})
    def delete(self, request: Request, backup_id: str) -> Response:
        backup_delete(_backup(backup_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class BackupDownloadView(APIView):
    renderer_classes = FILE_RENDERERS

    @extend_schema(
        parameters=[BACKUP_ID, NO_FORMAT],
        responses={(200, "application/zip"): OpenApiTypes.BINARY, 404: NOT_FOUND, 409: CONFLICT},
    )
    def get(self, request: Request, backup_id: str) -> StreamingHttpResponse:
        backup = _backup(backup_id)
        if backup.status != BackupStatus.COMPLETED:
            raise Conflict(BACKUP_NOT_COMPLETED)
        path = backup_path(backup)
        try:
            handle = path.open("rb") if path is not None else None
        except OSError:
            handle = None
        if handle is None:
            raise NotFound(BACKUP_FILE_MISSING)
        return file_response(request, handle, content_type="application/zip", attachment_name=path.name if path else "")


class BackupRestoreView(APIView):
    @extend_schema(
        parameters=[BACKUP_ID],
        request=RestoreRequestSerializer,
        responses={202: RestoreQueuedSerializer, 404: NOT_FOUND, 409: CONFLICT, 503: SERVICE_UNAVAILABLE},
    )
    def post(self, request: Request, backup_id: str) -> Response:
        backup = _backup(backup_id)
        serializer = RestoreRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = backup_restore_start(backup, mode=serializer.validated_data["mode"], created_via="api")
        body: dict[str, Any] = {"job_id": str(job.pk), "kind": job.kind, "status": job.status}
        return Response(body, status=status.HTTP_202_ACCEPTED)


def routes() -> list[URLPattern | URLResolver]:
    """Routes under ``/api/v1/`` and ``/v1/`` (optional trailing slash, like every route)."""
    backup = r"^backups/(?P<backup_id>[^/]+)"
    return [
        re_path(r"^backups/history/?$", BackupHistoryView.as_view(), name="backup-history"),
        re_path(r"^backup/create/?$", BackupCreateView.as_view(), name="backup-create"),
        re_path(r"^backups/?$", BackupCreateView.as_view(), name="backup-create-rest"),
        re_path(backup + r"/download/?$", BackupDownloadView.as_view(), name="backup-download"),
        re_path(backup + r"/restore/?$", BackupRestoreView.as_view(), name="backup-restore"),
        re_path(backup + r"/?$", BackupDetailView.as_view(), name="backup-detail"),
    ]
