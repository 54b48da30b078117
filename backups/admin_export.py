"""The adapter changelist's "Export selected" action (SPEC 9.1): a ZIP download of the selected adapters' records
and metadata (sidecars, previews; no model files), streamed through the export service like ``POST /export``.
Registered with ``AdapterAdmin`` through ``adapters.admin.extensions`` (``adapters`` never imports this app)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse

from adapters.admin.extensions import ListAction, list_action_register
from adapters.models import Adapter
from backups.archive.format import ArchiveOptions
from backups.services.exports import export_file_name, export_stream

EXPORT_SELECTED = "Export selected adapters (ZIP)"


@admin.action(description=EXPORT_SELECTED)
def export_selected(
    modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Adapter]
) -> StreamingHttpResponse:
    ids = tuple(str(pk) for pk in queryset.order_by("pk").values_list("pk", flat=True))
    everything = len(ids) == Adapter.objects.count()  # "select all": no id list as large as the catalogue
    options = ArchiveOptions(loras=True, lora_files=False, lora_metadata=True, adapter_ids=None if everything else ids)
    response = StreamingHttpResponse(export_stream(options), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{export_file_name()}"'
    return response


def adapter_export_action_register() -> None:
    list_action_register(ListAction("export_selected", export_selected, EXPORT_SELECTED, permissions=("view",)))
