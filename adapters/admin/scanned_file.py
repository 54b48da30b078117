"""``ScannedFileAdmin``: the scan cache, read-only apart from removing exclusions."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest

from adapters.admin.display import DeferringChangeList
from adapters.models import ScannedFile
from adapters.services import scanned_files_unexclude
from loraforge.admin import pretty_json


@admin.register(ScannedFile)
class ScannedFileAdmin(admin.ModelAdmin):
    list_display = ("path", "size", "sha256_prefix", "excluded", "adapter", "last_seen_at")
    list_filter = ("excluded",)
    list_select_related = ("adapter",)
    search_fields = ("path", "^sha256")
    list_per_page = 100
    changelist_deferred = ("header", "adapter__header_metadata", "adapter__search_index")
    actions = ("remove_exclusion",)
    fields = (
        "path",
        "size",
        "mtime_ns",
        "sha256",
        "excluded",
        "adapter",
        "last_seen_at",
        "header_error",
        "header_json",
    )
    readonly_fields = fields

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return DeferringChangeList

    @admin.display(description="SHA-256", ordering="sha256")
    def sha256_prefix(self, scanned_file: ScannedFile) -> str:
        return scanned_file.sha256[:12] if scanned_file.sha256 else "-"

    @admin.display(description="Header")
    def header_json(self, scanned_file: ScannedFile) -> str:
        return pretty_json(scanned_file.header)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ScannedFile | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ScannedFile | None = None) -> bool:
        return False

    @admin.action(description="Remove exclusion")
    def remove_exclusion(self, request: HttpRequest, queryset: QuerySet[ScannedFile]) -> None:
        count = scanned_files_unexclude(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Removed the exclusion of {count} scanned file(s).", messages.SUCCESS)
