"""``POST /import`` (SPEC 5.9): multipart archives streamed to disk, then imported one by one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.http import HttpRequest
from django.urls import URLPattern, URLResolver, re_path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backups.serializers.imports import (
    FILES_REQUIRED,
    ImportResponseSerializer,
    ImportUploadSerializer,
    import_config,
)
from backups.services.imports import import_run
from backups.uploads import FILES_FIELD, UNKNOWN_FIELD, ArchiveUploadHandler
from loraforge.errors import ApiProblem
from loraforge.models.jobs import JobOrigin
from loraforge.schema import CONFLICT, PROBLEM_DESCRIPTIONS

MULTIPART = "multipart/form-data"
NOT_MULTIPART = "Content-Type must be multipart/form-data"
FORM_FIELDS = frozenset({"config"})


def _uploads(request: Request) -> list[tuple[Path, str]]:
    unknown = {key: [UNKNOWN_FIELD] for key in request.POST if key not in FORM_FIELDS}
    unknown.update({key: [UNKNOWN_FIELD] for key in request.FILES if key != FILES_FIELD})
    if unknown:
        raise serializers.ValidationError(unknown)
    files = request.FILES.getlist(FILES_FIELD)
    if not files:
        raise serializers.ValidationError({FILES_FIELD: [FILES_REQUIRED]})
    return [(Path(upload.temporary_file_path()), upload.name or "upload.zip") for upload in files]


class ImportView(APIView):
    parser_classes = [MultiPartParser]

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        # Before anything reads the body (a session's CSRF check may): files go to disk, counted.
        self.upload_handler = ArchiveUploadHandler(request)
        request.upload_handlers = [self.upload_handler]
        return super().initialize_request(request, *args, **kwargs)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            handler = getattr(self, "upload_handler", None)
            if handler is not None:
                handler.discard()

    @extend_schema(
        request={MULTIPART: ImportUploadSerializer},
        responses={
            200: ImportResponseSerializer,
            400: OpenApiResponse(description=PROBLEM_DESCRIPTIONS[400]),
            409: CONFLICT,
            413: OpenApiResponse(description="Upload too large"),
            415: OpenApiResponse(description=PROBLEM_DESCRIPTIONS[415]),
        },
        description="Import archives (SPEC 5.9): `files` (1..10 ZIP archives) and an optional `config` JSON string "
        '(`{"mode": "merge"|"replace"|"dry-run", "backup_before": false}`). Each file is validated completely '
        "before anything is written and is independent of the others; 409 while another import or restore runs.",
    )
    def post(self, request: Request) -> Response:
        if not (request.content_type or "").lower().startswith(MULTIPART):
            raise ApiProblem(NOT_MULTIPART, status_code=415)
        uploads = _uploads(request)
        config = import_config(request.POST.get("config"))
        return Response(import_run(uploads=uploads, config=config, created_via=JobOrigin.API))


def routes() -> list[URLPattern | URLResolver]:
    return [re_path(r"^import/?$", ImportView.as_view(), name="import")]
